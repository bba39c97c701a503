/*
 * The request scanner of the connection guard (sched_guard.c): what a
 * client sends, read byte by byte the way libevent 2.1's evhttp will read
 * it, so that the guard knows where each request head ends, how long its
 * body is and where the next head starts, and can refuse a request before
 * evhttp sees any of it. No libevent here: the guard feeds it, and so do
 * the unit tests (tests/unit/test_guard.c).
 *
 * The caller keeps the bytes it fed and has not let go yet (held): a head
 * and a chunk-size line are held until they are complete, the last chunk
 * until its trailers are, body bytes go as soon as they are read. So a
 * refusal always finds evhttp at the start of a head or of a chunk. Each call says what to do with the held
 * bytes: nothing yet (GS_MORE), hand them on (GS_PASS), drop them (GS_DROP:
 * an empty line before a request line), or refuse the request (GS_REFUSE,
 * with status, code and message). Where evhttp would read a request some
 * other way than the scanner does, the scanner refuses it: a duplicate or
 * malformed Content-Length, a Transfer-Encoding other than chunked, both,
 * a header name that is not a token, a folded line continuing one of the
 * headers it reads, control bytes, a chunk extension. Every state is in the
 * struct: no allocation.
 */
#ifndef COMFYQ_SCHED_GUARD_SCAN_H
#define COMFYQ_SCHED_GUARD_SCAN_H

#include <stddef.h>

#define GS_METHOD_MAX 16
#define GS_TARGET_MAX 128
#define GS_NAME_MAX   24
#define GS_VALUE_MAX  24

enum gs_verdict { GS_MORE, GS_PASS, GS_DROP, GS_REFUSE };

/* Where the scanner is: what a refusal cuts (a head or a chunked body). */
enum gs_phase {
	GP_HEAD,    /* a request head */
	GP_LENGTH,  /* a body of Content-Length bytes */
	GP_SIZE,    /* a chunk-size line (or the empty line after a chunk) */
	GP_DATA,    /* a chunk's data */
	GP_TRAILER, /* the last chunk's trailer lines (held with it) */
};

struct gscan {
	/* Set by the caller before each feed (they may change on reload). */
	size_t	  head_max; /* request line plus headers, bytes */
	long long body_max; /* a body, bytes (decoded for chunked) */
	/* Optional: whether evhttp can parse a request target that is not
	 * a plain path (target, or its first bytes when cut is set). */
	int (*target_ok)(const char *target, int cut);

	/* Out. */
	size_t	      held;	      /* bytes fed and not let go yet */
	enum gs_phase phase;	      /* where a refusal happened */
	int	      status;	      /* GS_REFUSE: 400, 413, 417, 431, 501 */
	const char   *code, *message; /* GS_REFUSE */
	char	      method[GS_METHOD_MAX]; /* of the current head, cut */
	char	      target[GS_TARGET_MAX]; /* its request target, cut */

	/* The current line. */
	size_t	 hlen; /* bytes of this head (and its trailers) */
	unsigned line; /* lines of this head read */
	size_t	 col;  /* bytes of the current line */
	int	 cr;   /* the last byte was a CR */
	int	 fold; /* this line continues the previous header */
	int	 in_value;
	int	 which;	    /* the header this line is (gs_header) */
	int	 read_prev; /* the previous header is one of ours */
	char	 name[GS_NAME_MAX];
	size_t	 nlen;
	char	 value[GS_VALUE_MAX];
	size_t	 vlen;
	int	 vover; /* the value did not fit */
	/* The request line: the method, then the rest (target and version). */
	size_t mlen;
	int    in_rest;
	size_t rlen, tlen, spaces;
	char   tail[9]; /* the rest's last 9 bytes before its spaces */
	/* What the head says. */
	int	  minor;      /* HTTP/1.x */
	int	  bodyless;   /* HEAD or TRACE: evhttp reads no body */
	long long length;     /* Content-Length, -1: none */
	int	  chunked;    /* Transfer-Encoding: chunked */
	int	  expect_bad; /* an Expect other than 100-continue */
	int	  expect_seen;
	/* A body. */
	long long left;	 /* GP_LENGTH, GP_DATA: bytes to come */
	long long total; /* chunked: the data so far */
	long long size;	 /* GP_SIZE: the size read so far */
	int	  digits;
	int	  after_size; /* past the size's digits */
};

/* A scanner at the start of a connection. */
void gscan_init(struct gscan *g);
/*
 * Feeds n bytes (those after the held ones). Returns how many it read; the
 * verdict is about all the held bytes, these included. After GS_PASS and
 * GS_DROP the caller lets the held bytes go and calls gscan_let_go().
 */
size_t gscan_feed(
    struct gscan *g, const char *p, size_t n, enum gs_verdict *verdict);
void gscan_let_go(struct gscan *g);

#endif
