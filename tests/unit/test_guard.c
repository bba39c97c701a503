/*
 * The connection guard's request scanner (scheduler/sched_guard_scan.h),
 * driven the way sched_guard.c drives it: the bytes arrive in pieces (all
 * at once, or one by one), each piece is fed until it is used up, and the
 * held bytes are let go on GS_PASS and GS_DROP. Every case runs at both
 * sizes and must give the same bytes handed on, the same number of passes
 * and the same refusal.
 */
#include <stdio.h>
#include <string.h>

#include "sched_guard_scan.h"
#include "unit.h"

#define HEAD_MAX 256
#define BODY_MAX 64

struct run {
	char	      out[4096]; /* the bytes handed on, in order */
	size_t	      nout;
	int	      passes, drops, refused;
	int	      status;
	const char   *code;
	enum gs_phase phase;
	char	      method[GS_METHOD_MAX], target[GS_TARGET_MAX];
	size_t	      held; /* at the end */
};

/* The target hook the next scans get (NULL: none), and what it saw. */
static int (*scan_hook)(const char *, int);
static char hook_seen[GS_TARGET_MAX];
static int  hook_cut, hook_calls;

static int
hook_no_brackets(const char *target, int cut)
{
	snprintf(hook_seen, sizeof hook_seen, "%s", target);
	hook_cut = cut;
	hook_calls++;
	return (strchr(target, '[') == NULL);
}

static void
scan(const char *in, size_t len, size_t step, struct run *r)
{
	struct gscan	g = { .head_max = HEAD_MAX,
		   .body_max = BODY_MAX,
		   .target_ok = scan_hook };
	enum gs_verdict v;
	size_t		fed = 0, start = 0, end;

	memset(r, 0, sizeof *r);
	gscan_init(&g);
	while (fed < len) {
		end = fed + step < len ? fed + step : len;
		while (fed < end) {
			fed += gscan_feed(&g, in + fed, end - fed, &v);
			ASSERT_EQ(start + g.held, fed);
			switch (v) {
			case GS_MORE:
				break;
			case GS_PASS:
				ASSERT_TRUE(r->nout + g.held <= sizeof r->out);
				memcpy(r->out + r->nout, in + start, g.held);
				r->nout += g.held;
				r->passes++;
				start += g.held;
				gscan_let_go(&g);
				break;
			case GS_DROP:
				r->drops++;
				start += g.held;
				gscan_let_go(&g);
				break;
			case GS_REFUSE:
				r->refused = 1;
				r->status = g.status;
				r->code = g.code;
				r->phase = g.phase;
				snprintf(r->method, sizeof r->method, "%s",
				    g.method);
				snprintf(r->target, sizeof r->target, "%s",
				    g.target);
				return;
			}
		}
	}
	r->held = g.held;
}

/*
 * Runs in one piece (into r) and byte by byte; both must hand on the same
 * bytes and end the same way (body data goes on in as many passes as it
 * came in pieces, so only the one-piece run's passes are counted).
 */
static void
scan_both(const char *in, size_t len, struct run *r)
{
	struct run bytes;

	scan(in, len, len, r);
	scan(in, len, 1, &bytes);
	ASSERT_EQ(bytes.nout, r->nout);
	ASSERT_TRUE(memcmp(bytes.out, r->out, r->nout) == 0);
	ASSERT_EQ(bytes.drops, r->drops);
	ASSERT_EQ(bytes.refused, r->refused);
	ASSERT_EQ(bytes.status, r->status);
	ASSERT_EQ(bytes.phase, r->phase);
	ASSERT_EQ(bytes.held, r->held);
	ASSERT_STREQ(bytes.method, r->method);
	ASSERT_STREQ(bytes.target, r->target);
}

#define S(lit) lit, sizeof lit - 1

/* Heads, bodies and chunks are handed on whole, one pass each, in order,
 * and the scanner is back at a head after each request. */
static void
test_requests(void)
{
	static const char get[] = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char post[] = "POST /v1/jobs HTTP/1.1\r\n"
				   "content-length:  5 \r\n\r\nhello";
	static const char chunked[] =
	    "POST /comfy/prompt HTTP/1.0\r\n"
	    "Transfer-Encoding: Chunked\r\n\r\n"
	    "3\r\nabc\r\n"
	    "\r\n" /* an empty line between chunks: evhttp skips it */
	    "a the rest after a space is ignored\r\n0123456789\r\n"
	    "0\r\nX-Trailer: 1\r\n\r\n";
	char	   in[1024];
	struct run r;

	scan_both(S(get), &r);
	ASSERT_EQ(r.passes, 1);
	ASSERT_EQ(r.nout, sizeof get - 1);
	ASSERT_EQ(r.held, 0);

	/* Three pipelined, the middle one with a body. */
	snprintf(in, sizeof in, "%s%s%s", get, post, get);
	scan_both(in, strlen(in), &r);
	ASSERT_EQ(r.refused, 0);
	ASSERT_EQ(r.passes, 4); /* head, head, its 5 bytes, head */
	ASSERT_EQ(r.nout, strlen(in));
	ASSERT_TRUE(memcmp(r.out, in, r.nout) == 0);

	/* A chunked body, then a request: size lines, data and the empty
	 * line go on as they are read, the last chunk with its trailers. */
	snprintf(in, sizeof in, "%s%s", chunked, get);
	scan_both(in, strlen(in), &r);
	ASSERT_EQ(r.refused, 0);
	ASSERT_EQ(r.passes, 10);
	ASSERT_EQ(r.nout, strlen(in));
	ASSERT_EQ(r.held, 0);

	/* An incomplete head is held, nothing handed on. */
	scan_both(S("GET / HTTP/1.1\r\nHost: a\r\n"), &r);
	ASSERT_EQ(r.passes, 0);
	ASSERT_EQ(r.held, 25);

	/* Empty lines before a request line are dropped (RFC 9112 2.2). */
	snprintf(in, sizeof in, "\r\n\n%s", get);
	scan_both(in, strlen(in), &r);
	ASSERT_EQ(r.drops, 2);
	ASSERT_EQ(r.passes, 1);
	ASSERT_EQ(r.nout, sizeof get - 1);

	/* Expect: 100-continue, an Expect without a body, HTTP/1.0. */
	scan_both(S("PUT /x HTTP/1.1\r\nExpect: 100-Continue\r\n"
		    "Content-Length: 1\r\n\r\nx"),
	    &r);
	ASSERT_EQ(r.refused, 0);
	ASSERT_EQ(r.passes, 2);
	scan_both(S("GET /x HTTP/1.1\r\nExpect: tea\r\n\r\n"), &r);
	ASSERT_EQ(r.refused, 0);
	scan_both(S("POST /x HTTP/1.0\r\nExpect: tea\r\nContent-Length: 1"
		    "\r\n\r\nx"),
	    &r);
	ASSERT_EQ(r.refused, 0);
	/* A folded line continuing a header the scanner does not read. */
	scan_both(S("GET /x HTTP/1.1\r\nX-A: 1\r\n\t2\r\n\r\n"), &r);
	ASSERT_EQ(r.refused, 0);
	ASSERT_EQ(r.passes, 1);
}

/* The limits, at the byte. */
static void
test_limits(void)
{
	char	   in[1024];
	struct run r;
	int	   n;

	/* A head of exactly HEAD_MAX bytes passes; one more is 431. */
	n = snprintf(in, sizeof in, "GET / HTTP/1.1\r\nX: %*s\r\n\r\n",
	    HEAD_MAX - 23, "a");
	ASSERT_EQ(n, HEAD_MAX);
	scan_both(in, (size_t)n, &r);
	ASSERT_EQ(r.refused, 0);
	ASSERT_EQ(r.passes, 1);
	n = snprintf(in, sizeof in, "GET / HTTP/1.1\r\nX: %*s\r\n\r\n",
	    HEAD_MAX - 22, "a");
	scan_both(in, (size_t)n, &r);
	ASSERT_EQ(r.status, 431);
	ASSERT_STREQ(r.code, "headers_too_large");
	ASSERT_EQ(r.phase, GP_HEAD);
	/* A request line alone over the limit: no CRLF needed to refuse. */
	memset(in, 'a', sizeof in);
	memcpy(in, "GET /", 5);
	scan_both(in, sizeof in, &r);
	ASSERT_EQ(r.status, 431);
	ASSERT_STREQ(r.method, "GET");

	n = snprintf(in, sizeof in,
	    "POST /v1/jobs HTTP/1.1\r\nContent-Length: %d\r\n\r\n", BODY_MAX);
	scan_both(in, (size_t)n, &r);
	ASSERT_EQ(r.refused, 0);
	n = snprintf(in, sizeof in,
	    "POST /v1/jobs?x=1 HTTP/1.1\r\nContent-Length: %d\r\n\r\n",
	    BODY_MAX + 1);
	scan_both(in, (size_t)n, &r);
	ASSERT_EQ(r.status, 413);
	ASSERT_STREQ(r.code, "payload_too_large");
	ASSERT_STREQ(r.method, "POST");
	ASSERT_STREQ(r.target, "/v1/jobs?x=1");

	/* Chunked: the decoded size counts, refused at the size line that
	 * passes the limit (0x20 + 0x21 > 64), with evhttp at a chunk. */
	scan_both(S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "20\r\n01234567890123456789012345678901\r\n21\r\n"),
	    &r);
	ASSERT_EQ(r.status, 413);
	ASSERT_EQ(r.phase, GP_SIZE);
	ASSERT_EQ(r.passes, 4); /* the head, "20", its data, the CRLF */
	/* Trailers count against the head's limit. */
	n = snprintf(in, sizeof in,
	    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "0\r\nX: %*s\r\n\r\n",
	    HEAD_MAX, "a");
	scan_both(in, (size_t)n, &r);
	ASSERT_EQ(r.status, 431);
	ASSERT_EQ(r.phase, GP_TRAILER);
}

/* Heads evhttp would read differently, or not at all: refused. */
static void
test_refused(void)
{
	static const struct {
		const char *in;
		int	    status;
		const char *code;
	} cases[] = {
		{ "POST / HTTP/1.1\r\nContent-Length: 1\r\n"
		  "Content-Length: 1\r\n\r\n",
		    400, "bad_request" },
		{ "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400,
		    "bad_request" },
		{ "POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n", 400,
		    "bad_request" },
		{ "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400,
		    "bad_request" },
		{ "POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n", 400,
		    "bad_request" },
		{ "POST / HTTP/1.1\r\nContent-Length: 5\r\n 6\r\n\r\n", 400,
		    "bad_request" },
		{ "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		    400, "bad_request" },
		{ "POST / HTTP/1.1\r\nTransfer-Encoding:\tchunked\r\n\r\n", 400,
		    "bad_request" },
		{ "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n",
		    400, "bad_request" },
		{ "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
		  "Content-Length: 3\r\n\r\n",
		    400, "bad_request" },
		{ "GET / HTTP/1.1\r\n folded\r\n\r\n", 400, "bad_request" },
		{ "GET / HTTP/1.1\r\nno colon\r\n\r\n", 400, "bad_request" },
		{ "GET / HTTP/1.1\r\n: no name\r\n\r\n", 400, "bad_request" },
		{ "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400, "bad_request" },
		{ "GET / HTTP/1.1\r\nX: a\001b\r\n\r\n", 400, "bad_request" },
		{ "GET / HTTP/2.0\r\n\r\n", 400, "bad_request" },
		{ "GET /\r\n\r\n", 400, "bad_request" },
		{ "GET  HTTP/1.1\r\n\r\n", 400, "bad_request" },
		{ "NOPE\r\n\r\n", 400, "bad_request" },
		{ "HEAD / HTTP/1.1\r\nContent-Length: 2\r\n\r\nab", 400,
		    "bad_request" },
		{ "TRACE / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
		    "bad_request" },
		{ "get / HTTP/1.1\r\n\r\n", 501, "not_implemented" },
		{ "BREW /pot HTTP/1.1\r\n\r\n", 501, "not_implemented" },
		{ "CONNECT h:443 HTTP/1.1\r\n\r\n", 501, "not_implemented" },
		{ "POST / HTTP/1.1\r\nExpect: tea\r\nContent-Length: 1\r\n\r\nx",
		    417, "expectation_failed" },
		{ "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "3;ext=1\r\nabc\r\n0\r\n\r\n",
		    400, "bad_request" },
		{ "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "0x3\r\nabc\r\n0\r\n\r\n",
		    400, "bad_request" },
		{ "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "0\r\nno colon\r\n\r\n",
		    400, "bad_request" },
	};
	struct run r;
	size_t	   i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		scan_both(cases[i].in, strlen(cases[i].in), &r);
		if (r.status != cases[i].status)
			unit_fail(__FILE__, __LINE__, "case %zu (%s): %d", i,
			    cases[i].in, r.status);
		ASSERT_EQ(r.refused, 1);
		ASSERT_STREQ(r.code, cases[i].code);
	}
	/* A refusal in a chunked body names where evhttp is. */
	scan_both(S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "3\r\nabc\r\n0\r\nbad\r\n\r\n"),
	    &r);
	ASSERT_EQ(r.phase, GP_TRAILER);
	ASSERT_EQ(r.passes, 4); /* nothing of the last chunk went on */
}

/* A target other than a plain path goes to the caller's hook. */
static void
test_targets(void)
{
	char	   in[512];
	struct run r;

	scan_hook = hook_no_brackets;
	hook_calls = 0;
	scan_both(S("GET /v1/jobs?x=//y HTTP/1.1\r\n\r\n"), &r);
	ASSERT_EQ(r.passes, 1);
	ASSERT_EQ(hook_calls, 0); /* a path: evhttp takes any */
	scan_both(S("GET http://h:1/healthz HTTP/1.1\r\n\r\n"), &r);
	ASSERT_EQ(r.refused, 0);
	ASSERT_STREQ(hook_seen, "http://h:1/healthz");
	ASSERT_EQ(hook_cut, 0);
	scan_both(S("GET //[::1 HTTP/1.1\r\n\r\n"), &r);
	ASSERT_EQ(r.status, 400);
	ASSERT_STREQ(r.target, "//[::1");
	snprintf(in, sizeof in, "GET http://h/%0200d HTTP/1.1\r\n\r\n", 0);
	scan_both(in, strlen(in), &r);
	ASSERT_EQ(r.refused, 0);
	ASSERT_EQ(hook_cut, 1);
	ASSERT_EQ(strlen(hook_seen), GS_TARGET_MAX - 1);
	scan_hook = NULL;
}

const struct unit_test test_guard[] = {
	{ "targets", test_targets },
	{ "requests", test_requests },
	{ "limits", test_limits },
	{ "refused", test_refused },
	{ NULL, NULL },
};
