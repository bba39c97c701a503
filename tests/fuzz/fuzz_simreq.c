/*
 * libFuzzer target: the sim's request parsing (sim/reqparse.c), as
 * http.c and upload.c use it, on the whole request. The bytes are an
 * HTTP/1.1 request: its head goes through evhttp's own parser
 * (evhttp_parse_firstline_ and evhttp_parse_headers_, the code the
 * sim's listener runs on what it reads; exported by libevent 2.1, declared
 * in its private header only), then the route lookup with its /api twins,
 * 404 and 405, the CSRF guard's Host and Origin comparison, the JSON body
 * of the JSON routes and its key checks, and the multipart form of
 * POST /upload/image by its Content-Type's boundary. What the parts say
 * is checked as upload.c reads it: every part lies inside the body and
 * has a name. Nothing is written to disk. Request lines whose target is
 * not origin-form (a '/' first) are left out: for an absolute URI evhttp
 * looks up the virtual host on the request's server connection, which a
 * request parsed from a buffer has not (fuzz_sched has them, over a
 * socket).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>

#include "reqparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* libevent's own head parser (http.c), public in its internal header
 * only: the request line, then the headers, from buf. */
enum message_read_status {
	ALL_DATA_READ = 1,
	MORE_DATA_EXPECTED = 0,
	DATA_CORRUPTED = -1,
	REQUEST_CANCELED = -2,
	DATA_TOO_LONG = -3
};
enum message_read_status evhttp_parse_firstline_(
    struct evhttp_request *, struct evbuffer *);
enum message_read_status evhttp_parse_headers_(
    struct evhttp_request *, struct evbuffer *);

static void
fuzz_form(const char *ct, const char *body, size_t len)
{
	struct rp_form	      f;
	const struct rp_part *p;
	int		      i;

	if (rp_form_parse(ct, body, len, &f) == 0) {
		for (i = 0; i < f.n; i++) {
			p = &f.p[i];
			if (p->name == NULL || p->data < body ||
			    p->data + p->len > body + len)
				abort();
		}
		if ((p = rp_form_get(&f, "image")) != NULL &&
		    strcmp(p->name, "image") != 0)
			abort();
	}
	rp_form_free(&f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct evhttp_request *req;
	struct evbuffer	      *in;
	struct evkeyvalq      *h;
	const struct evhttp_uri *uri;
	enum rp_route	       route;
	const char	      *body;
	char		      *rest = NULL;
	size_t		       blen;
	cJSON		      *j;
	int		       rc;

	const uint8_t *sp = memchr(data, ' ', len);

	if (sp == NULL || sp + 1 >= data + len || sp[1] != '/')
		return (0); /* not origin-form: see above */
	if ((req = evhttp_request_new(NULL, NULL)) == NULL ||
	    (in = evbuffer_new()) == NULL)
		abort();
	evbuffer_add(in, data, len);
	/* The kind a server reads: a request, not a reply. */
	req->kind = EVHTTP_REQUEST;
	if (evhttp_parse_firstline_(req, in) != ALL_DATA_READ ||
	    evhttp_parse_headers_(req, in) != ALL_DATA_READ)
		goto out;
	h = evhttp_request_get_input_headers(req);
	(void)rp_foreign_origin(
	    evhttp_find_header(h, "Host"), evhttp_find_header(h, "Origin"));
	uri = evhttp_request_get_evhttp_uri(req);
	rc = rp_route(evhttp_request_get_command(req),
	    uri != NULL ? evhttp_uri_get_path(uri) : NULL, &route, &rest);
	if (rc != 0 && rc != 404 && rc != 405)
		abort();
	if (rc != 0 && rest != NULL)
		abort();
	if (rc == 0 && (route >= RP_NROUTES ||
			   (rp_routes[route].prefix != (rest != NULL))))
		abort();
	free(rest);
	/* What is left of the buffer is the body (no chunking here). */
	blen = evbuffer_get_length(in);
	body = blen > 0 ? (const char *)evbuffer_pullup(in, -1) : "";
	if (rc == 0 && rp_routes[route].body != RP_NONE &&
	    (j = rp_json(body, blen)) != NULL) {
		(void)rp_json_keys(j, "clear", "delete");
		(void)rp_json_keys(j, "number", "front");
		cJSON_Delete(j);
	}
	if (rc != 0 || route == RP_UPLOAD_IMAGE)
		fuzz_form(evhttp_find_header(h, "Content-Type"), body, blen);
out:
	evbuffer_free(in);
	evhttp_request_free(req);
	return (0);
}
