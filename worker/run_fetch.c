/*
 * A run's fetch stages (run.c has the whole machine): HISTORY reads the
 * finished prompt's /history entry (an error there ends the job as the
 * socket would have), FETCH gets each output with /view, validates it
 * (outputs.c) and stores it in the output directory, in Redis, both, or
 * an S3 bucket (staged in its temporary file, uploaded from there and
 * removed: outputs_s3.c), and then hands the job to its report
 * (run_report.c). An upload that fails after its retries (s3.h) ends the
 * job internal, like any store that fails. With output-fsync on, a file
 * for the output directory is not renamed on the loop: it joins the
 * run's batch (outputs_sync.h), and STORE waits while a thread of the
 * sync pool flushes and renames the batch and flushes the job's folder;
 * the job is reported once that has finished, internal if it failed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "jscan.h"
#include "log.h"
#include "outputs_s3.h"
#include "outputs_sync.h"
#include "run_int.h"
#include "settings.h"
#include "xmalloc.h"

static void	    run_history_done(const struct httpc_resp *, void *);
static const cJSON *run_last_message(const cJSON *, const char **);
static void	    run_fetch_next(struct run *);
static void	    run_view_done(const struct httpc_resp *, void *);
static void	    run_keep_bytes(struct run *, const struct out_file *,
	    const unsigned char *, size_t, cJSON *);
static void	    run_store_blob(struct run *, cJSON *, const char *, size_t);
static void	    run_blob_reply(redisAsyncContext *, void *, void *);
static void run_store_s3(struct run *, const struct out_file *, cJSON *);
static void run_s3_done(const struct s3_result *, void *);
static void run_store_sync(struct run *);
static void run_sync_done(void *, const char *);
static struct out_sync *run_sync_batch(struct run *);

void
run_fetch_history(struct run *r)
{
	run_set_state(r, RS_HISTORY);
	evtimer_del(r->silence);
	r->req = r->env->comfy->history(
	    r->env->ctx, r->prompt_id, run_history_done, r);
}

static void
run_history_done(const struct httpc_resp *resp, void *arg)
{
	struct run *r = arg;
	cJSON	   *e;

	r->req = NULL;
	if (resp->fail != HTTPC_OK || resp->status != 200) {
		run_end(r, EC_BACKEND_UNAVAILABLE, "GET /history: %s",
		    resp->fail != HTTPC_OK ? resp->err : "non-200 reply");
		return;
	}
	if ((e = run_history_parse(resp->body, resp->len, r->prompt_id)) ==
	    NULL)
		run_end(r, EC_STALLED,
		    "prompt %s finished but has no history entry",
		    r->prompt_id);
	else
		run_history_entry(r, e);
	cJSON_Delete(e);
}

/* The entry of a parsed /history/<id> reply, or NULL when there is none. */
const cJSON *
run_history_get(const cJSON *root, const char *prompt_id)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, prompt_id);

	return (cJSON_IsObject(e) ? e : NULL);
}

/*
 * A /history/<id> reply's entry for prompt_id, or NULL when it has none;
 * the caller frees it. Only the entry is parsed, and without its "prompt"
 * (the graph ComfyUI ran, which nothing here reads and which is most of
 * the bytes): jscan finds the entry in the text and its other members are
 * parsed as one object. A reply the scan cannot follow is parsed whole,
 * as before, so the result is the same either way but for "prompt".
 */
cJSON *
run_history_parse(const char *body, size_t len, const char *prompt_id)
{
	struct jscan_member e, m;
	struct jscan	    s;
	cJSON		   *root, *entry = NULL;
	char		   *text;
	size_t		    n = 0;
	int		    rc;

	if ((rc = jscan_find(body, len, prompt_id, &e)) == 0)
		return (NULL);
	if (rc == 1 && jscan_open(&s, e.val, (size_t)(e.vend - e.val)) == 0) {
		text = xmalloc((size_t)(e.vend - e.val) + 2);
		text[n++] = '{';
		while ((rc = jscan_next(&s, &m)) == 1) {
			if (m.klen == 6 && memcmp(m.key, "prompt", 6) == 0)
				continue;
			if (n > 1)
				text[n++] = ',';
			memcpy(text + n, m.mem, (size_t)(m.vend - m.mem));
			n += (size_t)(m.vend - m.mem);
		}
		text[n++] = '}';
		if (rc == 0)
			entry = cJSON_ParseWithLength(text, n);
		free(text);
		if (rc == 0)
			return (cJSON_IsObject(entry) ? entry : NULL);
	}
	root = cJSON_ParseWithLength(body, len);
	if (run_history_get(root, prompt_id) != NULL)
		entry =
		    cJSON_DetachItemFromObjectCaseSensitive(root, prompt_id);
	cJSON_Delete(root);
	return (entry);
}

/* The last [event, data] message of a history entry's status. */
static const cJSON *
run_last_message(const cJSON *entry, const char **type)
{
	const cJSON *st, *msgs, *m, *last = NULL;

	st = cJSON_GetObjectItemCaseSensitive(entry, "status");
	msgs = cJSON_GetObjectItemCaseSensitive(st, "messages");
	cJSON_ArrayForEach(m, msgs)
		if (cJSON_IsArray(m) && cJSON_IsString(m->child))
			last = m;
	*type = last ? last->child->valuestring : "";
	return (last && last->child->next ? last->child->next : NULL);
}

/* A finished prompt's history entry: success goes on to its outputs. */
void
run_history_entry(struct run *r, const cJSON *e)
{
	const cJSON *st, *ss, *data;
	const char  *last;
	char	     err[256];

	run_nodes_history(r, e);
	r->submitted = 0;
	st = cJSON_GetObjectItemCaseSensitive(e, "status");
	ss = cJSON_GetObjectItemCaseSensitive(st, "status_str");
	data = run_last_message(e, &last);
	if (cJSON_IsString(ss) && strcmp(ss->valuestring, "error") == 0) {
		if (strcmp(last, "execution_error") == 0 && data != NULL)
			run_exec_error(r, data);
		else
			run_interrupted(r);
		return;
	}
	if (outputs_collect(e, &r->outs, err, sizeof err) == -1) {
		run_end(r, EC_OUTPUT_INVALID, "%s", err);
		return;
	}
	if (r->outs.n == 0) {
		run_end(r, EC_OUTPUT_INVALID, "the workflow saved no files");
		return;
	}
	r->records = cJSON_CreateArray();
	r->out_i = 0;
	r->expect.max_pixels = r->env->cfg->max_output_pixels;
	run_set_state(r, RS_FETCH);
	run_fetch_next(r);
}

/*
 * Fetches the next output, or reports the job once all are stored (after
 * STORE when output-fsync gave them to the run's batch). With store dir or
 * s3 an output goes straight into its temporary file: nothing else needs
 * its bytes in memory.
 */
static void
run_fetch_next(struct run *r)
{
	const struct worker_cfg *cfg = r->env->cfg;
	const struct out_file	*f;
	char			 err[512];

	if (r->out_i == r->outs.n) {
		if (cfg->store == STORE_S3)
			output_s3_unstage(cfg->output_dir, r->jid);
		if (r->sync != NULL)
			run_store_sync(r);
		else
			run_begin_report(r, REPORT_COMPLETE);
		return;
	}
	f = &r->outs.v[r->out_i];
	if ((cfg->store == STORE_DIR || cfg->store == STORE_S3) &&
	    output_tmp_open(&r->tmp, cfg->output_dir, r->jid, f, r->out_i, err,
		sizeof err) == -1) {
		run_end(r, EC_INTERNAL, "storing %s: %s", f->filename, err);
		return;
	}
	r->req = r->env->comfy->view(r->env->ctx, f->filename, f->subfolder,
	    f->type, r->tmp.fd, (size_t)cfg->max_output_bytes,
	    cfg->output_timeout_ms, run_view_done, r);
}

/*
 * One output has come: validate it and store it. With store dir or s3 it
 * was written to its temporary file as it arrived and is validated there;
 * otherwise its bytes are in memory, as Redis needs them.
 */
static void
run_view_done(const struct httpc_resp *resp, void *arg)
{
	struct run		*r = arg;
	const struct out_file	*f = &r->outs.v[r->out_i];
	const struct worker_cfg *cfg = r->env->cfg;
	cJSON			*rec;
	char			 err[512];

	r->req = NULL;
	if (resp->fail == HTTPC_TOO_BIG) {
		run_end(r, EC_OUTPUT_INVALID, "%s is over %lld bytes",
		    f->filename, cfg->max_output_bytes);
		return;
	}
	if (resp->fail == HTTPC_WRITE) {
		run_end(
		    r, EC_INTERNAL, "storing %s: %s", f->filename, resp->err);
		return;
	}
	if (resp->fail != HTTPC_OK) {
		run_end(r, EC_BACKEND_UNAVAILABLE, "GET /view %s: %s",
		    f->filename, resp->err);
		return;
	}
	if (resp->status != 200) {
		run_end(r, EC_OUTPUT_INVALID, "GET /view %s: HTTP %ld",
		    f->filename, resp->status);
		return;
	}
	rec = cJSON_CreateObject();
	cJSON_AddItemToArray(r->records, rec);
	if (cfg->store == STORE_REDIS || cfg->store == STORE_BOTH) {
		run_keep_bytes(
		    r, f, (const unsigned char *)resp->body, resp->len, rec);
		return;
	}
	if (output_tmp_validate(&r->tmp, f, &r->expect, rec, err, sizeof err) ==
	    -1) {
		output_tmp_discard(&r->tmp);
		run_end(r, EC_OUTPUT_INVALID, "%s: %s", f->filename, err);
		return;
	}
	if (cfg->store == STORE_S3) {
		run_store_s3(r, f, rec);
		return;
	}
	if (cfg->output_fsync)
		out_sync_add(run_sync_batch(r), &r->tmp, rec);
	else if (output_tmp_commit(&r->tmp, rec, err, sizeof err) == -1) {
		run_end(r, EC_INTERNAL, "storing %s: %s", f->filename, err);
		return;
	}
	r->out_i++;
	run_fetch_next(r);
}

/* The run's batch of files for output-fsync, made at its first file. */
static struct out_sync *
run_sync_batch(struct run *r)
{
	if (r->sync == NULL)
		r->sync = out_sync_new(r->env->cfg->output_dir, r->jid);
	return (r->sync);
}

/* store redis or both: validates an output in memory and stores it. */
static void
run_keep_bytes(struct run *r, const struct out_file *f,
    const unsigned char *body, size_t len, cJSON *rec)
{
	const struct worker_cfg *cfg = r->env->cfg;
	struct out_tmp		 kept;
	char			 err[512];

	if (output_validate(f, body, len, &r->expect, rec, err, sizeof err) ==
	    -1) {
		run_end(r, EC_OUTPUT_INVALID, "%s: %s", f->filename, err);
		return;
	}
	if (cfg->store == STORE_BOTH &&
	    output_store_dir(cfg->output_dir, r->jid, f, r->out_i, body, len,
		cfg->output_fsync ? &kept : NULL, rec, err, sizeof err) == -1) {
		run_end(r, EC_INTERNAL, "storing %s: %s", f->filename, err);
		return;
	}
	if (cfg->store == STORE_BOTH && cfg->output_fsync)
		out_sync_add(run_sync_batch(r), &kept, rec);
	run_store_blob(r, rec, (const char *)body, len);
}

/* Stores an output as a Redis string with a TTL, for hosts whose disk the
 * producer cannot reach; rec gets its key. */
static void
run_store_blob(struct run *r, cJSON *rec, const char *data, size_t len)
{
	char key[256];

	snprintf(
	    key, sizeof key, "%sblob:%s:%d", r->env->prefix, r->jid, r->out_i);
	cJSON_AddStringToObject(rec, "key", key);
	if (r->env->redis->store_blob(r->env->ctx, key, data, len,
		r->env->cfg->blob_ttl_s * 1000, run_blob_reply, r) == 0)
		r->refs++;
	else
		run_end(r, EC_INTERNAL,
		    "storing output %d in Redis: not connected", r->out_i);
}

static void
run_blob_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct run *r = arg;
	redisReply *rep = reply;

	(void)ac;
	if (r->state == RS_FETCH) {
		if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
			run_end(r, EC_INTERNAL,
			    "storing output %d in Redis: %s", r->out_i,
			    rep ? rep->str : "connection lost");
		else {
			r->out_i++;
			run_fetch_next(r);
		}
	}
	run_unref(r);
}

/* store s3: uploads the validated temporary file; rec is its record. */
static void
run_store_s3(struct run *r, const struct out_file *f, cJSON *rec)
{
	const cJSON *mime = cJSON_GetObjectItemCaseSensitive(rec, "mime");
	struct stat  st;

	if (fstat(r->tmp.fd, &st) == -1) {
		output_tmp_discard(&r->tmp);
		run_end(r, EC_INTERNAL, "storing %s: %s: %s", f->filename,
		    r->tmp.tmp, strerror(errno));
		return;
	}
	free(r->up_key);
	r->up_key = output_s3_key(r->env->cfg->s3_prefix, r->jid, f->stored);
	r->up = r->env->store->put(r->env->ctx, r->up_key, r->tmp.fd,
	    (size_t)st.st_size,
	    cJSON_IsString(mime) ? mime->valuestring : output_mime(f),
	    run_s3_done, r);
}

/* An upload has ended: the staged file goes; the job goes on or fails. */
static void
run_s3_done(const struct s3_result *res, void *arg)
{
	struct run	      *r = arg;
	const struct out_file *f = &r->outs.v[r->out_i];
	char		       how[40];

	r->up = NULL;
	output_tmp_discard(&r->tmp);
	if (!res->ok) {
		run_end(r, EC_INTERNAL, "storing %s in the bucket: %s",
		    f->filename, res->err);
		return;
	}
	if (res->parts > 0)
		snprintf(how, sizeof how, "multipart, %d parts", res->parts);
	else
		snprintf(how, sizeof how, "one PUT");
	log_job(LL_VERBOSE, r->jid,
	    "stored %s as s3 object %s (%s, %d request%s, %lld ms)",
	    f->filename, r->up_key, how, res->requests,
	    res->requests == 1 ? "" : "s", res->ms);
	r->env->store->record(
	    r->env->ctx, r->up_key, cJSON_GetArrayItem(r->records, r->out_i));
	r->out_i++;
	run_fetch_next(r);
}

/*
 * STORE: the batch goes to the sync pool; the run is reported when it is
 * back (run_sync_done). The run stays allocated meanwhile (refs), whatever
 * ends it in between (a cancel, the wall clock, a lost lease).
 */
static void
run_store_sync(struct run *r)
{
	struct out_sync *s = r->sync;

	run_set_state(r, RS_STORE);
	r->sync = NULL;
	r->refs++;
	if (out_sync_start(s, r->env->sync_pool, run_sync_done, r) == -1) {
		r->refs--;
		r->sync = s; /* run_free discards it */
		run_end(r, EC_INTERNAL, "the sync pool refused work");
	}
}

static void
run_sync_done(void *arg, const char *err)
{
	struct run *r = arg;

	if (r->state == RS_STORE && !r->env->stopped) {
		if (err != NULL)
			run_end(r, EC_INTERNAL, "storing outputs: %s", err);
		else
			run_begin_report(r, REPORT_COMPLETE);
	}
	run_unref(r);
}
