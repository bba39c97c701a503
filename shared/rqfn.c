/*
 * The functions library's replies (see rqfn.h). One table row per function
 * of lua/<name>.lua, as the janitor's duty table is one row per duty: its
 * name, the status replies it may give (OK, STALE), and the array replies
 * it may give, each a tag (the first element, or none) and a shape, one
 * letter per element after the tag:
 *
 *   i  an integer      s  a bulk string      S  an array of bulk strings
 *   *  the letters after it repeat, zero or more times, to the end
 *
 * rqfn_match finds which of the row's replies a reply is, checking every
 * element's type and the count, so the decoders that follow read elements
 * by position without checking again. The builders are in rqfn_cmd.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rqfn.h"
#include "rqfn_int.h"

#define RQFN_FORMS 4

#define RQ_OK	  0x1 /* status OK */
#define RQ_STALE  0x2 /* status STALE */
#define RQ_STRING 0x4 /* a bulk string */

/* What rqfn_match found, besides the index of an array form. */
#define RQFN_IS_OK     (-2)
#define RQFN_IS_STALE  (-3)
#define RQFN_IS_STRING (-4)

struct rqfn_form {
	const char *tag; /* NULL: an array without a tag */
	const char *shape;
};

static const struct rqfn_def {
	const char	*name;
	unsigned	 status;
	struct rqfn_form forms[RQFN_FORMS];
} rqfn_table[RQFN_FN_COUNT] = {
	[RQFN_FN_VERSION] = { "version", RQ_STRING, { { NULL, NULL } } },
	[RQFN_FN_ENQUEUE] = { "enqueue", 0, { { NULL, "sss" } } },
	/* the last: a job with the fetch count, when the claim asks for it */
	[RQFN_FN_CLAIM] = { "claim", 0,
	    { { "job", "siisiiis" }, { "noslot", "ii" }, { "nojob", "s" },
		{ "job", "siisiiisi" } } },
	[RQFN_FN_ACQUIRE] = { "acquire", RQ_STALE,
	    { { "ok", "" }, { "noslot", "ii" } } },
	[RQFN_FN_HEARTBEAT] = { "heartbeat", 0, { { NULL, "SSii" } } },
	[RQFN_FN_COMPLETE] = { "complete", RQ_OK | RQ_STALE,
	    { { NULL, NULL } } },
	[RQFN_FN_FAIL] = { "fail", RQ_STALE,
	    { { "delayed", "i" }, { "failed", "" }, { "canceled", "" } } },
	[RQFN_FN_PROGRESS] = { "progress", RQ_OK | RQ_STALE,
	    { { NULL, NULL } } },
	[RQFN_FN_RELEASE] = { "release", RQ_STALE,
	    { { "queued", "" }, { "canceled", "" } } },
	[RQFN_FN_CANCEL] = { "cancel", 0,
	    { { "canceled", "" }, { "requested", "" }, { "already", "s" } } },
	[RQFN_FN_REGISTER] = { "register", 0, { { NULL, "ii" } } },
	[RQFN_FN_UNREGISTER] = { "unregister", RQ_OK, { { NULL, NULL } } },
	[RQFN_FN_SLOT_SET] = { "slot_set", RQ_OK, { { NULL, NULL } } },
	[RQFN_FN_SLOT_GET] = { "slot_get", 0, { { NULL, "iiii*sssii" } } },
	[RQFN_FN_SLOT_POOLS] = { "slot_pools", 0, { { NULL, "*s" } } },
	[RQFN_FN_SLOT_ACQUIRE] = { "slot_acquire", 0,
	    { { "slot", "ii" }, { "noslot", "ii" } } },
	[RQFN_FN_SLOT_RENEW] = { "slot_renew", RQ_OK | RQ_STALE,
	    { { NULL, NULL } } },
	[RQFN_FN_SLOT_RELEASE] = { "slot_release", RQ_OK | RQ_STALE,
	    { { NULL, NULL } } },
	[RQFN_FN_REAP] = { "reap", 0, { { NULL, "iiiiii" } } },
	[RQFN_FN_TRIM] = { "trim", 0, { { NULL, "iiss" } } },
	[RQFN_FN_EXPIRE] = { "expire", 0, { { NULL, "i" } } },
	[RQFN_FN_WORKERS_GONE] = { "workers_gone", 0, { { NULL, "ii*s" } } },
	[RQFN_FN_QUEUE_STATUS] = { "queue_status", 0, { { NULL, "iiii" } } },
	[RQFN_FN_ACTIVE_FILES] = { "active_files", 0, { { NULL, "i*ss" } } },
	[RQFN_FN_JOB_FILES] = { "job_files", RQ_OK | RQ_STALE,
	    { { NULL, NULL } } },
	[RQFN_FN_WEBHOOK_CLAIM] = { "webhook_claim", 0,
	    { { NULL, "i*sssiiS" } } },
	[RQFN_FN_WEBHOOK_DONE] = { "webhook_done", RQ_OK | RQ_STALE,
	    { { NULL, NULL } } },
	[RQFN_FN_WEBHOOK_PROGRESS_CLAIM] = { "webhook_progress_claim", 0,
	    { { NULL, "i*sssiiS" } } },
	[RQFN_FN_WEBHOOK_PROGRESS_DONE] = { "webhook_progress_done",
	    RQ_OK | RQ_STALE, { { NULL, NULL } } },
	[RQFN_FN_COMFY_UPLOAD] = { "comfy_upload", RQ_STRING,
	    { { NULL, NULL } } },
};

const char *
rqfn_name(enum rqfn_fn fn)
{
	return (rqfn_table[fn].name);
}

/* Starts FCALL comfyq_<name> 1 <prefix> (version: FCALL_RO, no key). */
void
rqfn_cmd(struct rq_cmd *c, enum rqfn_fn fn, const char *prefix)
{
	if (fn == RQFN_FN_VERSION) {
		rq_cmd_init(c, "FCALL_RO");
		rq_cmd_add(c, "comfyq_version");
		rq_cmd_add(c, "0");
	} else
		rq_cmd_fcall(c, rqfn_table[fn].name, prefix);
}

static int
rqfn_elem_ok(const redisReply *e, char t)
{
	size_t i;

	switch (t) {
	case 'i':
		return (e->type == REDIS_REPLY_INTEGER);
	case 's':
		return (e->type == REDIS_REPLY_STRING);
	case 'S':
		if (e->type != REDIS_REPLY_ARRAY)
			return (0);
		for (i = 0; i < e->elements; i++)
			if (e->element[i]->type != REDIS_REPLY_STRING)
				return (0);
		return (1);
	}
	return (0);
}

/* Whether r->element[from..] has the shape (see the top of the file). */
static int
rqfn_shape_ok(const redisReply *r, size_t from, const char *shape)
{
	const char *rep = strchr(shape, '*');
	size_t	    fixed, group, n, i;
	char	    t;

	fixed = rep != NULL ? (size_t)(rep - shape) : strlen(shape);
	group = rep != NULL ? strlen(rep + 1) : 0;
	n = r->elements - from;
	if (n < fixed || (group == 0 ? n != fixed : (n - fixed) % group != 0))
		return (0);
	for (i = 0; i < n; i++) {
		t = i < fixed ? shape[i] : rep[1 + (i - fixed) % group];
		if (!rqfn_elem_ok(r->element[from + i], t))
			return (0);
	}
	return (1);
}

/* Says in err what r is, for an unexpected reply of function d. */
static int
rqfn_unexpected(
    const struct rqfn_def *d, const redisReply *r, char *err, size_t errlen)
{
	const char *tag = "";

	if (r == NULL) {
		snprintf(err, errlen, "no reply");
		return (-1);
	}
	if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
	    r->element[0]->type == REDIS_REPLY_STRING)
		tag = r->element[0]->str;
	if (r->type == REDIS_REPLY_ARRAY)
		snprintf(err, errlen,
		    "unexpected reply to %s (an array of %zu, first '%.32s')",
		    d->name, r->elements, tag);
	else
		snprintf(err, errlen, "unexpected reply to %s (type %d%s%.32s)",
		    d->name, r->type, r->type == REDIS_REPLY_STATUS ? " " : "",
		    r->type == REDIS_REPLY_STATUS ? r->str : "");
	return (-1);
}

/*
 * Which of function id's replies r is: the index of its array form, or
 * RQFN_IS_OK, RQFN_IS_STALE, RQFN_IS_STRING; -1 with err set for an error
 * reply (its text) or a reply of no shape the function gives.
 */
int
rqfn_match(enum rqfn_fn id, const redisReply *r, char *err, size_t errlen)
{
	const struct rqfn_def  *d = &rqfn_table[id];
	const struct rqfn_form *f;
	int			i;

	if (r != NULL && r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "%s", r->str);
		return (-1);
	}
	if (r != NULL && r->type == REDIS_REPLY_STATUS) {
		if ((d->status & RQ_OK) && strcmp(r->str, "OK") == 0)
			return (RQFN_IS_OK);
		if ((d->status & RQ_STALE) && strcmp(r->str, "STALE") == 0)
			return (RQFN_IS_STALE);
	}
	if (r != NULL && r->type == REDIS_REPLY_STRING &&
	    (d->status & RQ_STRING))
		return (RQFN_IS_STRING);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY)
		return (rqfn_unexpected(d, r, err, errlen));
	for (i = 0; i < RQFN_FORMS && d->forms[i].shape != NULL; i++) {
		f = &d->forms[i];
		if (f->tag == NULL) {
			if (rqfn_shape_ok(r, 0, f->shape))
				return (i);
			continue;
		}
		if (r->elements >= 1 &&
		    r->element[0]->type == REDIS_REPLY_STRING &&
		    strcmp(r->element[0]->str, f->tag) == 0 &&
		    rqfn_shape_ok(r, 1, f->shape))
			return (i);
	}
	return (rqfn_unexpected(d, r, err, errlen));
}

/* A reply that is OK or STALE: *stale 1 for STALE. */
int
rqfn_ok_stale(
    enum rqfn_fn id, const redisReply *r, int *stale, char *err, size_t errlen)
{
	int m = rqfn_match(id, r, err, errlen);

	if (m == -1)
		return (-1);
	*stale = m == RQFN_IS_STALE;
	return (0);
}

/* The integers of an untagged array of integers (already matched). */
static void
rqfn_ints(const redisReply *r, long long *const *out, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		*out[i] = r->element[i]->integer;
}

int
rqfn_version_reply(
    const redisReply *r, const char **version, char *err, size_t errlen)
{
	if (rqfn_match(RQFN_FN_VERSION, r, err, errlen) == -1)
		return (-1);
	*version = r->str;
	return (0);
}

int
rqfn_enqueue_reply(
    const redisReply *r, struct rqfn_enqueue *out, char *err, size_t errlen)
{
	if (rqfn_match(RQFN_FN_ENQUEUE, r, err, errlen) == -1)
		return (-1);
	out->jid = E(0)->str;
	out->result = E(1)->str;
	out->state = E(2)->str;
	return (0);
}

int
rqfn_claim_reply(
    const redisReply *r, struct rqfn_claim *out, char *err, size_t errlen)
{
	char *end;
	int   m;

	memset(out, 0, sizeof *out);
	if ((m = rqfn_match(RQFN_FN_CLAIM, r, err, errlen)) == -1)
		return (-1);
	out->fetch_waiting = -1;
	if (m == 3) {
		out->fetch_waiting = E(9)->integer;
		m = RQFN_CLAIM_JOB;
	}
	out->kind = (enum rqfn_claim_kind)m;
	switch (out->kind) {
	case RQFN_CLAIM_JOB:
		out->jid = E(1)->str;
		out->fence = E(2)->integer;
		out->attempt = E(3)->integer;
		out->spec = E(4)->str;
		out->spec_len = E(4)->len;
		out->lease_until = E(5)->integer;
		out->timeout_s = E(6)->integer;
		out->slot = E(7)->integer != 0;
		out->model = E(8)->str;
		break;
	case RQFN_CLAIM_NOSLOT:
		out->used = E(1)->integer;
		out->capacity = E(2)->integer;
		break;
	case RQFN_CLAIM_NOJOB:
		/* A zset score: digits, or "" when nothing is delayed. */
		if (*E(1)->str == '\0')
			break;
		out->next_due_ms = (long long)strtod(E(1)->str, &end);
		if (*end != '\0') {
			snprintf(err, errlen,
			    "unexpected reply to claim (due time '%.32s')",
			    E(1)->str);
			return (-1);
		}
		break;
	}
	return (0);
}

int
rqfn_acquire_reply(
    const redisReply *r, struct rqfn_acquire *out, char *err, size_t errlen)
{
	int m;

	memset(out, 0, sizeof *out);
	if ((m = rqfn_match(RQFN_FN_ACQUIRE, r, err, errlen)) == -1)
		return (-1);
	if (m == RQFN_IS_STALE)
		out->kind = RQFN_ACQUIRE_STALE;
	else if (m == 0)
		out->kind = RQFN_ACQUIRE_OK;
	else {
		out->kind = RQFN_ACQUIRE_NOSLOT;
		out->used = E(1)->integer;
		out->capacity = E(2)->integer;
	}
	return (0);
}

int
rqfn_heartbeat_reply(
    const redisReply *r, struct rqfn_heartbeat *out, char *err, size_t errlen)
{
	if (rqfn_match(RQFN_FN_HEARTBEAT, r, err, errlen) == -1)
		return (-1);
	out->lost = E(0)->element;
	out->nlost = E(0)->elements;
	out->cancel = E(1)->element;
	out->ncancel = E(1)->elements;
	out->capacity = E(2)->integer;
	out->registered = E(3)->integer != 0;
	return (0);
}

int
rqfn_complete_reply(const redisReply *r, int *stale, char *err, size_t errlen)
{
	return (rqfn_ok_stale(RQFN_FN_COMPLETE, r, stale, err, errlen));
}

int
rqfn_progress_reply(const redisReply *r, int *stale, char *err, size_t errlen)
{
	return (rqfn_ok_stale(RQFN_FN_PROGRESS, r, stale, err, errlen));
}

int
rqfn_job_files_reply(const redisReply *r, int *stale, char *err, size_t errlen)
{
	return (rqfn_ok_stale(RQFN_FN_JOB_FILES, r, stale, err, errlen));
}

/* fail and release: a tag, or STALE. */
static int
rqfn_end_reply(enum rqfn_fn id, const redisReply *r, struct rqfn_end *out,
    char *err, size_t errlen)
{
	static const enum rqfn_end_kind fail[] = { RQFN_END_DELAYED,
		RQFN_END_FAILED, RQFN_END_CANCELED };
	static const enum rqfn_end_kind release[] = { RQFN_END_QUEUED,
		RQFN_END_CANCELED };
	int				m;

	memset(out, 0, sizeof *out);
	if ((m = rqfn_match(id, r, err, errlen)) == -1)
		return (-1);
	if (m == RQFN_IS_STALE) {
		out->kind = RQFN_END_STALE;
		out->what = "STALE";
		return (0);
	}
	out->kind = id == RQFN_FN_FAIL ? fail[m] : release[m];
	out->what = E(0)->str;
	if (out->kind == RQFN_END_DELAYED)
		out->due_ms = E(1)->integer;
	return (0);
}

int
rqfn_fail_reply(
    const redisReply *r, struct rqfn_end *out, char *err, size_t errlen)
{
	return (rqfn_end_reply(RQFN_FN_FAIL, r, out, err, errlen));
}

int
rqfn_release_reply(
    const redisReply *r, struct rqfn_end *out, char *err, size_t errlen)
{
	return (rqfn_end_reply(RQFN_FN_RELEASE, r, out, err, errlen));
}

int
rqfn_cancel_reply(
    const redisReply *r, struct rqfn_cancel *out, char *err, size_t errlen)
{
	int m;

	memset(out, 0, sizeof *out);
	if ((m = rqfn_match(RQFN_FN_CANCEL, r, err, errlen)) == -1)
		return (-1);
	out->kind = (enum rqfn_cancel_kind)m;
	out->what = E(0)->str;
	if (out->kind == RQFN_CANCEL_ALREADY)
		out->state = E(1)->str;
	return (0);
}

int
rqfn_register_reply(
    const redisReply *r, struct rqfn_register *out, char *err, size_t errlen)
{
	long long *const v[] = { &out->capacity, &out->vram_budget_mb };

	if (rqfn_match(RQFN_FN_REGISTER, r, err, errlen) == -1)
		return (-1);
	rqfn_ints(r, v, 2);
	return (0);
}

int
rqfn_unregister_reply(const redisReply *r, char *err, size_t errlen)
{
	return (rqfn_match(RQFN_FN_UNREGISTER, r, err, errlen) == -1 ? -1 : 0);
}

int
rqfn_slot_set_reply(const redisReply *r, char *err, size_t errlen)
{
	return (rqfn_match(RQFN_FN_SLOT_SET, r, err, errlen) == -1 ? -1 : 0);
}

int
rqfn_slot_get_reply(
    const redisReply *r, struct rqfn_slot_get *out, char *err, size_t errlen)
{
	long long *const v[] = { &out->capacity, &out->vram_budget_mb,
		&out->used, &out->vram_used_mb };

	if (rqfn_match(RQFN_FN_SLOT_GET, r, err, errlen) == -1)
		return (-1);
	rqfn_ints(r, v, 4);
	out->nholders = (r->elements - 4) / 5;
	out->r = r;
	return (0);
}

/* The i-th holder of a decoded slot_get reply (i < nholders). */
void
rqfn_slot_holder(const struct rqfn_slot_get *s, size_t i, struct rqfn_holder *h)
{
	redisReply *const *e = s->r->element + 4 + 5 * i;

	h->holder = e[0]->str;
	h->worker = e[1]->str;
	h->fence = e[2]->str;
	h->lease_until = e[3]->integer;
	h->vram_mb = e[4]->integer;
}

int
rqfn_slot_pools_reply(
    const redisReply *r, struct rqfn_slot_pools *out, char *err, size_t errlen)
{
	if (rqfn_match(RQFN_FN_SLOT_POOLS, r, err, errlen) == -1)
		return (-1);
	out->pools = r->element;
	out->npools = r->elements;
	return (0);
}

int
rqfn_slot_acquire_reply(const redisReply *r, struct rqfn_slot_acquire *out,
    char *err, size_t errlen)
{
	int m;

	memset(out, 0, sizeof *out);
	if ((m = rqfn_match(RQFN_FN_SLOT_ACQUIRE, r, err, errlen)) == -1)
		return (-1);
	out->granted = m == 0;
	if (out->granted) {
		out->fence = E(1)->integer;
		out->lease_until = E(2)->integer;
	} else {
		out->used = E(1)->integer;
		out->capacity = E(2)->integer;
	}
	return (0);
}

int
rqfn_slot_renew_reply(const redisReply *r, int *stale, char *err, size_t errlen)
{
	return (rqfn_ok_stale(RQFN_FN_SLOT_RENEW, r, stale, err, errlen));
}

int
rqfn_slot_release_reply(
    const redisReply *r, int *stale, char *err, size_t errlen)
{
	return (rqfn_ok_stale(RQFN_FN_SLOT_RELEASE, r, stale, err, errlen));
}

int
rqfn_reap_reply(
    const redisReply *r, struct rqfn_reap *out, char *err, size_t errlen)
{
	long long *const v[] = { &out->requeued, &out->lost, &out->promoted,
		&out->slots_freed, &out->holding, &out->buried };

	if (rqfn_match(RQFN_FN_REAP, r, err, errlen) == -1)
		return (-1);
	rqfn_ints(r, v, 6);
	return (0);
}

int
rqfn_trim_reply(
    const redisReply *r, struct rqfn_trim *out, char *err, size_t errlen)
{
	long long *const v[] = { &out->events_trimmed, &out->refunds_trimmed };

	if (rqfn_match(RQFN_FN_TRIM, r, err, errlen) == -1)
		return (-1);
	rqfn_ints(r, v, 2);
	out->refunds_floor = E(2)->str;
	out->events_floor = E(3)->str;
	return (0);
}

int
rqfn_expire_reply(
    const redisReply *r, long long *expired, char *err, size_t errlen)
{
	long long *const v[] = { expired };

	if (rqfn_match(RQFN_FN_EXPIRE, r, err, errlen) == -1)
		return (-1);
	rqfn_ints(r, v, 1);
	return (0);
}

int
rqfn_workers_gone_reply(const redisReply *r, struct rqfn_workers_gone *out,
    char *err, size_t errlen)
{
	long long *const v[] = { &out->gone, &out->forgotten };

	if (rqfn_match(RQFN_FN_WORKERS_GONE, r, err, errlen) == -1)
		return (-1);
	rqfn_ints(r, v, 2);
	out->wids = r->element + 2;
	out->nwids = r->elements - 2;
	return (0);
}

int
rqfn_queue_status_reply(const redisReply *r, struct rqfn_queue_status *out,
    char *err, size_t errlen)
{
	long long *const v[] = { &out->events, &out->busy, &out->total,
		&out->buried };

	if (rqfn_match(RQFN_FN_QUEUE_STATUS, r, err, errlen) == -1)
		return (-1);
	rqfn_ints(r, v, 4);
	return (0);
}

int
rqfn_active_files_reply(const redisReply *r, struct rqfn_active_files *out,
    char *err, size_t errlen)
{
	if (rqfn_match(RQFN_FN_ACTIVE_FILES, r, err, errlen) == -1)
		return (-1);
	out->truncated = E(0)->integer != 0;
	out->njobs = (r->elements - 1) / 2;
	out->r = r;
	return (0);
}

/* The i-th job of a decoded active_files reply (i < njobs). */
void
rqfn_active_file(const struct rqfn_active_files *a, size_t i, const char **jid,
    const char **files)
{
	*jid = a->r->element[1 + 2 * i]->str;
	*files = a->r->element[2 + 2 * i]->str;
}
