/*
 * GET /v1/jobs/{id}/outputs/{n}: the bytes of a job's n-th output, from
 * the store its record names (README "comfyq-worker", outputs): a file
 * under output-dir, or a Redis blob. `?thumb=N` gives a JPEG preview that
 * fits N x N instead (16..2048).
 *
 * A record's path is never opened as it is. The worker stores a job's
 * files flat in <output-dir>/<job>/, so the path must end in
 * /<job>/<name> with a name of one component, and what is opened is that
 * name in the job's folder under the output-dir descriptor opened at
 * start, each step with O_NOFOLLOW: a record, a link or a renamed folder
 * cannot lead outside the store. A blob key must be the queue's own
 * blob:<job>:<n>. A thumbnail's source is decoded only after its header
 * says it is small enough (img_decode, as for input images).
 *
 * An output in an S3 bucket (store s3: the record has presigned_url) is
 * answered 302 to its presigned URL while that works, and 410 once it
 * has expired (the scheduler holds no S3 credentials to sign a new one).
 * Its bytes never pass through here, so ?thumb= is 501 for it: nothing
 * here makes thumbnails of objects in a bucket.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <stb_image_write.h>

#include "img.h"
#include "log.h"
#include "sched.h"
#include "sched_http.h"
#include "sched_routes.h"
#include "util.h"
#include "xmalloc.h"

#define THUMB_MIN	    16
#define THUMB_MAX	    2048
#define THUMB_SOURCE_MAX    (256 << 20)
#define THUMB_SOURCE_PIXELS (8192LL * 8192)
#define THUMB_QUALITY	    85

struct outreq {
	struct http_wait w;
	struct sched	*s;
	char		 jid[72];
	int		 n, thumb; /* thumb 0: the bytes as stored */
	char		*tenant_prefix;
	char		 mime[128];
};

static void
outputs_free(struct outreq *o)
{
	free(o->tenant_prefix);
	free(o);
}

/* The record's mime when it is a plain type/subtype, else a safe one. */
static void
outputs_mime(struct outreq *o, const cJSON *rec)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(rec, "mime");
	size_t	     i;
	int	     slash = 0;

	snprintf(o->mime, sizeof o->mime, "application/octet-stream");
	if (!cJSON_IsString(m) || strlen(m->valuestring) >= sizeof o->mime)
		return;
	for (i = 0; m->valuestring[i] != '\0'; i++) {
		char c = m->valuestring[i];

		if (c == '/')
			slash++;
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			     c == '.' || c == '+' || c == '-'))
			return;
	}
	if (slash == 1 && m->valuestring[0] != '/')
		snprintf(o->mime, sizeof o->mime, "%s", m->valuestring);
}

static void
outputs_jpeg_cb(void *ctx, void *data, int n)
{
	evbuffer_add(ctx, data, (size_t)n);
}

/* Answers with a JPEG that fits o->thumb square, made from buf. */
static void
outputs_thumb(struct outreq *o, struct evhttp_request *req,
    const unsigned char *buf, size_t len)
{
	const struct img_limits lim = { THUMB_SOURCE_MAX, THUMB_SOURCE_PIXELS,
		1, 16384 };
	struct img		im, fit;
	struct evbuffer	       *b;
	double			k;
	char			err[512], msg[640];
	int			w, h;

	if (strncmp(o->mime, "image/", 6) != 0) {
		snprintf(msg, sizeof msg, "no thumbnail for %s", o->mime);
		http_reply_error(req, 415, "unsupported_media_type", msg);
		return;
	}
	if (img_decode(buf, len, &lim, 3, &im, err, sizeof err) == -1) {
		snprintf(msg, sizeof msg, "no thumbnail: %s", err);
		http_reply_error(req, 415, "unsupported_media_type", msg);
		return;
	}
	k = (double)o->thumb / (im.w > im.h ? im.w : im.h);
	if (k > 1)
		k = 1;
	w = (int)(im.w * k + 0.5);
	h = (int)(im.h * k + 0.5);
	if (img_fit(&im, w < 1 ? 1 : w, h < 1 ? 1 : h, &fit, err, sizeof err) ==
	    -1) {
		img_free(&im);
		http_reply_error(req, 500, "internal", err);
		return;
	}
	img_free(&im);
	b = evbuffer_new();
	if (!stbi_write_jpg_to_func(outputs_jpeg_cb, b, fit.w, fit.h,
		fit.channels, fit.pix, THUMB_QUALITY))
		http_reply_error(req, 500, "internal", "JPEG encoding failed");
	else
		http_reply_bytes(req, 200, "image/jpeg", b);
	evbuffer_free(b);
	img_free(&fit);
}

/* Opens <output-dir>/<jid>/<name> with no link followed; -1 with errno. */
static int
outputs_open(struct outreq *o, const char *path)
{
	const char *name = strrchr(path, '/');
	size_t	    jl = strlen(o->jid);
	int	    dfd, fd, e;

	if (name == NULL || name[1] == '\0' || name[1] == '.' ||
	    strlen(name + 1) > 255 || (size_t)(name - path) < jl + 1 ||
	    name[-(long)jl - 1] != '/' || memcmp(name - jl, o->jid, jl) != 0) {
		errno = EPERM;
		return (-1);
	}
	dfd = openat(o->s->output_fd, o->jid,
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd == -1)
		return (-1);
	fd = openat(
	    dfd, name + 1, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	e = errno;
	close(dfd);
	errno = e;
	return (fd);
}

static void
outputs_file(struct outreq *o, struct evhttp_request *req, const char *path)
{
	struct evbuffer *b;
	struct stat	 st;
	unsigned char	*buf;
	ssize_t		 got;
	int		 fd;

	if ((fd = outputs_open(o, path)) == -1) {
		if (errno != ENOENT)
			log_job(LL_WARNING, o->jid,
			    "output %d: %s: refused (%s)", o->n, path,
			    strerror(errno));
		http_reply_error(req, 404, "not_found",
		    "the output is no longer in the store");
		return;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		http_reply_error(req, 404, "not_found",
		    "the output is not a file in the store");
		return;
	}
	if (o->thumb == 0) {
		b = evbuffer_new();
		evbuffer_add_file(b, fd, 0, st.st_size); /* takes fd */
		http_reply_bytes(req, 200, o->mime, b);
		evbuffer_free(b);
		return;
	}
	if (st.st_size > THUMB_SOURCE_MAX ||
	    (buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		http_reply_error(req, 415, "unsupported_media_type",
		    "no thumbnail: the output is too large");
		return;
	}
	got = pread(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	if (got != st.st_size)
		http_reply_error(
		    req, 500, "internal", "reading the output failed");
	else
		outputs_thumb(o, req, buf, (size_t)got);
	free(buf);
}

static void
outputs_blob_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct outreq	      *o = priv;
	struct evhttp_request *req = http_wait_end(&o->w);
	redisReply	      *reply = r;
	struct evbuffer	      *b;

	(void)ac;
	if (req == NULL)
		goto out;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
		http_reply_redis_down(req);
	else if (reply->type != REDIS_REPLY_STRING)
		http_reply_error(
		    req, 404, "not_found", "the output's blob has expired");
	else if (o->thumb != 0)
		outputs_thumb(
		    o, req, (const unsigned char *)reply->str, reply->len);
	else {
		b = evbuffer_new();
		evbuffer_add(b, reply->str, reply->len);
		http_reply_bytes(req, 200, o->mime, b);
		evbuffer_free(b);
	}
out:
	outputs_free(o);
}

/* store s3: a redirect to the record's presigned URL (see the top). */
static void
outputs_redirect(struct outreq *o, struct evhttp_request *req, const cJSON *rec,
    const char *url)
{
	const cJSON	*exp, *key;
	struct evbuffer *b;
	const char	*p;
	char		 msg[512];

	exp = cJSON_GetObjectItemCaseSensitive(rec, "presigned_expires_ms");
	key = cJSON_GetObjectItemCaseSensitive(rec, "object_key");
	for (p = url; *p > 0x20 && *p < 0x7f; p++)
		;
	if (*p != '\0' || strlen(url) > 8192 ||
	    (strncmp(url, "https://", 8) != 0 &&
		strncmp(url, "http://", 7) != 0)) {
		http_reply_error(req, 404, "not_found",
		    "the output's presigned URL is not a plain http(s) URL");
		return;
	}
	if (o->thumb) {
		http_reply_error(req, 501, "not_implemented",
		    "thumbnails of outputs in an S3 bucket are not made here: "
		    "fetch the object at its presigned_url (GET /v1/jobs/{id})");
		return;
	}
	if (cJSON_IsNumber(exp) && exp->valuedouble <= clock_wall_ms()) {
		snprintf(msg, sizeof msg,
		    "the output's presigned URL has expired; the object is "
		    "%.300s in the workers' bucket",
		    cJSON_IsString(key) ? key->valuestring : "(no key)");
		http_reply_error(req, 410, "gone", msg);
		return;
	}
	b = evbuffer_new();
	evhttp_add_header(
	    evhttp_request_get_output_headers(req), "Location", url);
	http_reply_bytes(req, 302, NULL, b);
	evbuffer_free(b);
}

/* A blob key must be this queue's blob:<jid>:<digits>. */
static int
outputs_key_ok(struct outreq *o, const char *key)
{
	char   want[256];
	size_t n = (size_t)snprintf(
	    want, sizeof want, "%sblob:%s:", o->s->prefix, o->jid);

	if (strncmp(key, want, n) != 0 || key[n] == '\0')
		return (0);
	return (strspn(key + n, "0123456789") == strlen(key + n));
}

static void
outputs_record_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct outreq	      *o = priv;
	redisReply	      *h = r;
	struct evhttp_request *req = o->w.req;
	const cJSON	      *rec, *path, *key, *url;
	cJSON		      *list = NULL;
	struct rq_cmd	       c;

	(void)ac;
	if (req == NULL || h == NULL || h->type != REDIS_REPLY_ARRAY ||
	    h->elements != 3) {
		if ((req = http_wait_end(&o->w)) != NULL)
			http_reply_redis_down(req);
		goto done;
	}
	if (h->element[0]->type != REDIS_REPLY_STRING ||
	    !sched_tenant_ok(o->tenant_prefix,
		h->element[1]->type == REDIS_REPLY_STRING ? h->element[1]->str
							  : NULL)) {
		http_reply_error(
		    http_wait_end(&o->w), 404, "not_found", "no such job");
		goto done;
	}
	if (h->element[2]->type == REDIS_REPLY_STRING)
		list = cJSON_Parse(h->element[2]->str);
	if ((rec = cJSON_GetArrayItem(list, o->n)) == NULL) {
		http_reply_error(
		    http_wait_end(&o->w), 404, "not_found", "no such output");
		goto done;
	}
	outputs_mime(o, rec);
	url = cJSON_GetObjectItemCaseSensitive(rec, "presigned_url");
	if (cJSON_IsString(url)) {
		outputs_redirect(
		    o, http_wait_end(&o->w), rec, url->valuestring);
		goto done;
	}
	path = cJSON_GetObjectItemCaseSensitive(rec, "path");
	key = cJSON_GetObjectItemCaseSensitive(rec, "key");
	if (cJSON_IsString(path)) {
		outputs_file(o, http_wait_end(&o->w), path->valuestring);
		goto done;
	}
	if (!cJSON_IsString(key) || !outputs_key_ok(o, key->valuestring)) {
		http_reply_error(http_wait_end(&o->w), 404, "not_found",
		    "the output has no place in the store");
		goto done;
	}
	rq_cmd_init(&c, "GET");
	rq_cmd_add(&c, key->valuestring);
	if (rq_async_call(o->s->rc, outputs_blob_cb, o, &c) == -1)
		http_reply_redis_down(http_wait_end(&o->w));
	else
		o = NULL; /* outputs_blob_cb answers */
	rq_cmd_free(&c);
done:
	cJSON_Delete(list);
	if (o != NULL)
		outputs_free(o);
}

SCHED_ROUTE(outputs_get)
{
	struct outreq *o;
	struct rq_cmd  c;
	long long      n, thumb = 0;
	char	       q[16];

	if (http_query(req, "thumb", q, sizeof q) == 0 &&
	    parse_ll(q, THUMB_MIN, THUMB_MAX, &thumb) == -1) {
		http_reply_error(req, 400, "invalid_input",
		    "thumb: must be an integer in 16..2048");
		return;
	}
	if (parse_ll(args[1], 0, 9999, &n) == -1) {
		http_reply_error(req, 404, "not_found", "no such output");
		return;
	}
	o = xcalloc(1, sizeof *o);
	o->s = s;
	o->n = (int)n;
	o->thumb = (int)thumb;
	snprintf(o->jid, sizeof o->jid, "%s", args[0]);
	if (sched_scope(tok) != NULL)
		o->tenant_prefix = xstrdup(sched_scope(tok));
	rq_cmd_init(&c, "HMGET");
	rq_cmd_addf(&c, "%sjob:%s", s->prefix, o->jid);
	rq_cmd_add(&c, "state");
	rq_cmd_add(&c, "tenant");
	rq_cmd_add(&c, "outputs");
	http_wait_start(&o->w, req);
	if (rq_async_call(s->rc, outputs_record_cb, o, &c) == -1) {
		http_reply_redis_down(http_wait_end(&o->w));
		outputs_free(o);
	}
	rq_cmd_free(&c);
}
