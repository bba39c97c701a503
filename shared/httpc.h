/*
 * Non-blocking HTTP client on a libevent loop (libcurl's multi interface,
 * driven by libevent socket and timer events). Every request ends in
 * exactly one callback on the loop thread, also when it could not even be
 * started, unless it was canceled first. Bodies are copied; responses are
 * capped in size, and a download goes to a file instead of memory.
 * A request may carry extra headers, and a filter on the addresses it may
 * connect to (checked on the address curl actually connects to, after DNS,
 * so a name that resolves inward is refused too; proxies and connection
 * reuse are then off).
 */
#ifndef COMFYQ_HTTPC_H
#define COMFYQ_HTTPC_H

#include <stddef.h>

struct event_base;
struct sockaddr;
struct httpc;
struct httpc_req;

enum httpc_fail {
	HTTPC_OK,      /* a response came (any status) */
	HTTPC_REFUSED, /* could not connect */
	HTTPC_TIMEOUT, /* connect or transfer time ran out */
	HTTPC_TOO_BIG, /* the response was over max_resp */
	HTTPC_WRITE,   /* a download could not write its file */
	HTTPC_BLOCKED, /* the address filter refused every address */
	HTTPC_ERROR,   /* any other transport error */
};

struct httpc_resp {
	enum httpc_fail fail;
	long		status; /* 0 unless fail == HTTPC_OK */
	const char     *body;	/* NUL-terminated, valid in the cb */
	size_t		len;
	const char     *content_type; /* or NULL */
	const char     *err;	      /* a readable reason when fail != OK */
};

struct httpc_opts {
	long   timeout_ms;	   /* whole transfer; 0: 30000 */
	long   connect_timeout_ms; /* 0: 5000 */
	size_t max_resp;	   /* 0: 8 MiB */
	/* NULL, or "Name: value" lines to send, NULL-terminated (copied) */
	const char *const *headers;
	/* NULL, or 1 for an address the request may connect to */
	int (*addr_ok)(const struct sockaddr *sa);
};

typedef void (*httpc_cb)(const struct httpc_resp *, void *);

struct httpc	 *httpc_new(struct event_base *base);
void		  httpc_free(struct httpc *h);
struct httpc_req *httpc_get(struct httpc *h, const char *url,
    const struct httpc_opts *o, httpc_cb cb, void *arg);
struct httpc_req *httpc_download(struct httpc *h, const char *url, int fd,
    const struct httpc_opts *o, httpc_cb cb, void *arg);
struct httpc_req *httpc_post(struct httpc *h, const char *url,
    const char *content_type, const void *body, size_t len,
    const struct httpc_opts *o, httpc_cb cb, void *arg);
struct httpc_req *httpc_upload(struct httpc *h, const char *url,
    const char *field, const char *filename, const void *data, size_t len,
    const char *const *fields, const struct httpc_opts *o, httpc_cb cb,
    void *arg);
void		  httpc_cancel(struct httpc_req *r);
int		  httpc_pending(const struct httpc *h);

#endif
