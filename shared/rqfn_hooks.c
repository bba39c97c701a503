/*
 * Reply decoders of the webhook functions (lua/webhook.lua,
 * lua/webhook_progress.lua) and comfy_upload: the rest of rqfn.h's
 * decoders, split from rqfn.c by noun. The shapes are in rqfn.c's table.
 */
#include <stdio.h>
#include <string.h>

#include "rqfn.h"
#include "rqfn_int.h"

/* A claim of function id (webhook_claim, webhook_progress_claim): a
 * delivery's field list must pair names with values. */
static int
rqfn_wh_claim_reply(enum rqfn_fn id, const redisReply *r,
    struct rqfn_webhook_claim *out, char *err, size_t errlen)
{
	size_t i;

	memset(out, 0, sizeof *out);
	if (rqfn_match(id, r, err, errlen) == -1)
		return (-1);
	for (i = 1; i < r->elements; i += 6)
		if (E(i + 5)->elements % 2 != 0) {
			snprintf(err, errlen,
			    "unexpected reply to %s (an odd field list of %zu)",
			    rqfn_name(id), E(i + 5)->elements);
			return (-1);
		}
	out->next_due_ms = E(0)->integer;
	out->n = (r->elements - 1) / 6;
	out->r = r;
	return (0);
}

int
rqfn_webhook_claim_reply(const redisReply *r, struct rqfn_webhook_claim *out,
    char *err, size_t errlen)
{
	return (
	    rqfn_wh_claim_reply(RQFN_FN_WEBHOOK_CLAIM, r, out, err, errlen));
}

int
rqfn_webhook_progress_claim_reply(const redisReply *r,
    struct rqfn_webhook_claim *out, char *err, size_t errlen)
{
	return (rqfn_wh_claim_reply(
	    RQFN_FN_WEBHOOK_PROGRESS_CLAIM, r, out, err, errlen));
}

/* The i-th delivery of a decoded webhook_claim reply (i < n). */
void
rqfn_webhook_delivery(
    const struct rqfn_webhook_claim *w, size_t i, struct rqfn_webhook *d)
{
	redisReply *const *e = w->r->element + 1 + 6 * i;

	d->jid = e[0]->str;
	d->url = e[1]->str;
	d->id = e[2]->str;
	d->attempt = e[3]->integer;
	d->finished_ms = e[4]->integer;
	d->fields = e[5]->element;
	d->nfields = e[5]->elements / 2;
}

int
rqfn_webhook_done_reply(
    const redisReply *r, int *stale, char *err, size_t errlen)
{
	return (rqfn_ok_stale(RQFN_FN_WEBHOOK_DONE, r, stale, err, errlen));
}

/* The i-th delivery of a decoded webhook_progress_claim reply (i < n). */
void
rqfn_webhook_progress(
    const struct rqfn_webhook_claim *w, size_t i, struct rqfn_whprog *d)
{
	redisReply *const *e = w->r->element + 1 + 6 * i;

	d->jid = e[0]->str;
	d->url = e[1]->str;
	d->id = e[2]->str;
	d->seq = e[3]->integer;
	d->tries = e[4]->integer;
	d->fields = e[5]->element;
	d->nfields = e[5]->elements / 2;
}

int
rqfn_webhook_progress_done_reply(
    const redisReply *r, int *stale, char *err, size_t errlen)
{
	return (rqfn_ok_stale(
	    RQFN_FN_WEBHOOK_PROGRESS_DONE, r, stale, err, errlen));
}

int
rqfn_comfy_upload_reply(
    const redisReply *r, const char **name, char *err, size_t errlen)
{
	if (rqfn_match(RQFN_FN_COMFY_UPLOAD, r, err, errlen) == -1)
		return (-1);
	*name = r->str;
	return (0);
}
