/*
 * Non-blocking HTTP client on a libevent loop (libcurl's multi interface,
 * driven by libevent socket and timer events). Every request ends in
 * exactly one callback on the loop thread, also when it could not even be
 * started, unless it was canceled first. Bodies are copied; responses are
 * capped in size, and a download goes to a file instead of memory.
 * A request may carry extra headers, and a filter on the addresses it may
 * connect to (checked on the address curl actually connects to, after DNS,
 * so a name that resolves inward is refused too; proxies and connection
 * reuse are then off). httpc_send is the general request: any method, a
 * body from memory or read from a file as it is sent, AWS SigV4 signing
 * by libcurl (CURLOPT_AWS_SIGV4), and one response header kept.
 */
#ifndef COMFYQ_HTTPC_H
#define COMFYQ_HTTPC_H

#include <stddef.h>
#include <sys/types.h>

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
	const char     *header; /* httpc_opts.resp_header's value, or NULL */
};

struct httpc_opts {
	long   timeout_ms;	   /* whole transfer; 0: 30000 */
	long   connect_timeout_ms; /* 0: 5000 */
	size_t max_resp;	   /* 0: 8 MiB */
	/* NULL, or "Name: value" lines to send, NULL-terminated (copied) */
	const char *const *headers;
	/* NULL, or 1 for an address the request may connect to */
	int (*addr_ok)(const struct sockaddr *sa);
	/* NULL, or libcurl's CURLOPT_AWS_SIGV4 ("aws:amz:REGION:s3"),
	 * signed with aws_key and aws_secret (copied by libcurl) */
	const char *aws_sigv4;
	const char *aws_key;
	const char *aws_secret;
	/* NULL, or a response header (any case) whose value resp.header
	 * gets, without surrounding blanks ("ETag") */
	const char *resp_header;
};

/*
 * A request body for httpc_send: len bytes of data (copied), or with data
 * NULL, len bytes read from the file fd at offset off as they are sent
 * (the file stays the caller's and must stay open until the callback or
 * httpc_cancel).
 */
struct httpc_body {
	const void *data;
	int	    fd;
	off_t	    off;
	size_t	    len;
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
struct httpc_req *httpc_send(struct httpc *h, const char *method,
    const char *url, const struct httpc_body *body, const struct httpc_opts *o,
    httpc_cb cb, void *arg);
void		  httpc_cancel(struct httpc_req *r);
int		  httpc_pending(const struct httpc *h);

#endif
