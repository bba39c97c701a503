/*
 * POST /comfy/upload/image (see sched_comfy.h): ComfyUI's multipart form
 * (image, subfolder, type, overwrite) into the input store, the Redis
 * string comfy:upload:<tenant>:<subfolder/>name with a TTL of
 * COMFY_UPLOAD_TTL_S; a later prompt whose LoadImage names it carries the
 * bytes (sched_comfy.c). The answer is ComfyUI's {name, subfolder, type}.
 *
 * As ComfyUI (comfyui-api.md §2.9): no image part or an empty file name
 * is 400 with no body, and so is a subfolder that climbs; without
 * overwrite, the same name with the same bytes keeps the name, other
 * bytes get "name (1).ext" (one call of the library's comfy_upload,
 * lua/upload.lua, decides, so two uploads at once cannot take one name;
 * past "name (99).ext" it is 409 conflict). The bytes are not checked
 * here; the worker decodes every input before it takes a GPU slot.
 * Unlike ComfyUI, a type outside input, temp and output is 400 (ComfyUI
 * raises: 500), a name our raw-graph rules would refuse is 400 at once,
 * and an image is at most COMFY_UPLOAD_MAX bytes (413), so that its base64
 * fits a job spec (1 MiB); body-max-bytes bounds the whole request before
 * that.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>

#include "confine.h"
#include "log.h"
#include "rqfn.h"
#include "sched.h"
#include "sched_comfy.h"
#include "sched_http.h"
#include "util.h"
#include "xmalloc.h"

#define COMFY_UPLOAD_MAX (760 * 1024)
#define FORM_FIELD_MAX	 512

struct form {
	const char *image; /* the file part's bytes */
	size_t	    len;
	char	    filename[FORM_FIELD_MAX];
	char	    subfolder[FORM_FIELD_MAX];
	char	    type[32];
	char	    overwrite[16];
};

struct cupload {
	struct http_wait w;
	char		 subfolder[FORM_FIELD_MAX];
	char		 type[32];
};

static const char *
form_find(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
	const char *p = hay, *end = hay + hlen;

	while (nlen > 0 && (size_t)(end - p) >= nlen) {
		const char *q =
		    memchr(p, needle[0], (size_t)(end - p) - nlen + 1);

		if (q == NULL)
			return (NULL);
		if (memcmp(q, needle, nlen) == 0)
			return (q);
		p = q + 1;
	}
	return (NULL);
}

/* A parameter of a header value (name="x" or name=x) into buf. */
static int
form_param(const char *h, size_t hlen, const char *key, char *buf, size_t len)
{
	char	    pat[32];
	const char *p, *end = h + hlen, *v;
	size_t	    n;

	snprintf(pat, sizeof pat, "%s=", key);
	for (p = h; (p = form_find(p, (size_t)(end - p), pat, strlen(pat)));
	     p++) {
		if (p > h && p[-1] != ' ' && p[-1] != ';')
			continue;
		v = p + strlen(pat);
		if (v < end && *v == '"') {
			v++;
			n = (size_t)((const char *)memchr(
					 v, '"', (size_t)(end - v)) != NULL
				? (const char *)memchr(
				      v, '"', (size_t)(end - v)) -
				    v
				: end - v);
		} else
			n = strcspn(v, ";\r\n") < (size_t)(end - v)
			    ? strcspn(v, ";\r\n")
			    : (size_t)(end - v);
		if (n >= len)
			return (-1);
		snprintf(buf, len, "%.*s", (int)n, v);
		return (0);
	}
	return (-1);
}

/* Splits a multipart/form-data body; -1 when it is not one. */
static int
form_parse(const char *ct, const char *body, size_t blen, struct form *f)
{
	char	    boundary[200], sep[210], name[64], fn[FORM_FIELD_MAX];
	const char *p, *end = body + blen, *hend, *next;
	size_t	    dl;

	if (ct == NULL || strncasecmp(ct, "multipart/form-data", 19) != 0 ||
	    form_param(ct, strlen(ct), "boundary", boundary, sizeof boundary) ==
		-1 ||
	    *boundary == '\0')
		return (-1);
	/* sep is CRLF "--" boundary; the first one has no CRLF before it. */
	dl = (size_t)snprintf(sep, sizeof sep, "\r\n--%s", boundary);
	if ((p = form_find(body, blen, sep + 2, dl - 2)) == NULL)
		return (-1);
	p += dl - 2;
	for (;;) {
		if ((size_t)(end - p) < 2 || memcmp(p, "--", 2) == 0)
			return (0);
		if (memcmp(p, "\r\n", 2) != 0)
			return (-1);
		p += 2;
		if ((hend = form_find(p, (size_t)(end - p), "\r\n\r\n", 4)) ==
		    NULL)
			return (-1);
		if ((next = form_find(
			 hend + 4, (size_t)(end - hend - 4), sep, dl)) == NULL)
			return (-1);
		if (form_param(p, (size_t)(hend - p), "name", name,
			sizeof name) == -1) {
			p = next + dl;
			continue;
		}
		if (strcmp(name, "image") == 0) {
			if (form_param(p, (size_t)(hend - p), "filename", fn,
				sizeof fn) == -1)
				fn[0] = '\0';
			snprintf(f->filename, sizeof f->filename, "%s", fn);
			f->image = hend + 4;
			f->len = (size_t)(next - hend - 4);
		} else {
			char  *dst = NULL;
			size_t dlen = 0, vl = (size_t)(next - hend - 4);

			if (strcmp(name, "subfolder") == 0)
				dst = f->subfolder, dlen = sizeof f->subfolder;
			else if (strcmp(name, "type") == 0)
				dst = f->type, dlen = sizeof f->type;
			else if (strcmp(name, "overwrite") == 0)
				dst = f->overwrite, dlen = sizeof f->overwrite;
			if (dst != NULL && vl >= dlen)
				return (-1);
			if (dst != NULL)
				snprintf(dst, dlen, "%.*s", (int)vl, hend + 4);
		}
		p = next + dl;
	}
}

static void
upload_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct cupload	      *u = priv;
	struct evhttp_request *req = http_wait_end(&u->w);
	const char	      *name;
	char		       err[2048];
	cJSON		      *o;

	(void)ac;
	if (req == NULL)
		goto out;
	if (r == NULL) {
		http_reply_redis_down(req);
		goto out;
	}
	if (rqfn_comfy_upload_reply(r, &name, err, sizeof err) == -1) {
		if (strncmp(err, "CONFLICT ", 9) == 0)
			http_reply_error(req, 409, "conflict", err + 9);
		else if (strncmp(err, "INVALID ", 8) == 0)
			http_reply_json(req, 400, NULL);
		else {
			log_warnx("comfy_upload: %s", err);
			http_reply_error(req, 500, "internal", err);
		}
		goto out;
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", name);
	cJSON_AddStringToObject(o, "subfolder", u->subfolder);
	cJSON_AddStringToObject(o, "type", u->type);
	http_reply_json(req, 200, o);
	cJSON_Delete(o);
out:
	free(u);
}

SCHED_ROUTE(comfy_upload)
{
	struct form		      f;
	struct cupload		     *u;
	struct rq_cmd		      c;
	struct rqfn_comfy_upload_args a;
	const char		     *base, *dot;
	char  *body, full[2 * FORM_FIELD_MAX + 2], why[160];
	char   stem[FORM_FIELD_MAX];
	size_t len;

	(void)args;
	memset(&f, 0, sizeof f);
	if ((body = http_body(req, &len)) == NULL) {
		http_reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	if (form_parse(http_header(req, "Content-Type"), body, len, &f) == -1 ||
	    f.image == NULL || f.filename[0] == '\0' || f.subfolder[0] == '/' ||
	    strstr(f.subfolder, "..") != NULL) {
		http_reply_json(req, 400, NULL);
		goto out;
	}
	if (f.type[0] == '\0')
		snprintf(f.type, sizeof f.type, "input");
	base = strrchr(f.filename, '/') ? strrchr(f.filename, '/') + 1
					: f.filename;
	snprintf(full, sizeof full, "%s%s%s", f.subfolder,
	    f.subfolder[0] != '\0' ? "/" : "", base);
	if ((strcmp(f.type, "input") != 0 && strcmp(f.type, "temp") != 0 &&
		strcmp(f.type, "output") != 0) ||
	    *base == '\0' || confine_name(full, why, sizeof why) == -1) {
		http_reply_json(req, 400, NULL);
		goto out;
	}
	if (f.len > COMFY_UPLOAD_MAX) {
		http_reply_error(req, 413, "payload_too_large",
		    "an upload is at most 778240 bytes here: a prompt carries "
		    "it in its job spec, which is at most 1 MiB");
		goto out;
	}
	dot = strrchr(base, '.');
	snprintf(stem, sizeof stem, "%.*s",
	    (int)(dot != NULL && dot != base ? (size_t)(dot - base)
					     : strlen(base)),
	    base);
	u = xcalloc(1, sizeof *u);
	snprintf(u->subfolder, sizeof u->subfolder, "%s", f.subfolder);
	snprintf(u->type, sizeof u->type, "%s", f.type);
	a.tenant = comfy_tenant(tok);
	a.subfolder = f.subfolder;
	a.stem = stem;
	a.ext = dot != NULL && dot != base ? dot : "";
	a.bytes = f.image;
	a.len = f.len;
	a.overwrite =
	    strcmp(f.overwrite, "true") == 0 || strcmp(f.overwrite, "1") == 0;
	a.ttl_s = COMFY_UPLOAD_TTL_S;
	rqfn_comfy_upload_cmd(&c, s->prefix, &a);
	http_wait_start(&u->w, req);
	if (rq_async_call(s->rc, upload_cb, u, &c) == -1) {
		http_reply_redis_down(http_wait_end(&u->w));
		free(u);
	}
	rq_cmd_free(&c);
out:
	free(body);
}
