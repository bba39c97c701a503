/*
 * The request scanner (see sched_guard_scan.h). One byte at a time for the
 * lines (a head, a chunk-size line, a trailer), whole runs for body data.
 * What it reads follows evhttp 2.1.12 (http.c): a line ends at LF, a CR
 * before it is dropped; the request line is METHOD SP TARGET SP VERSION
 * split at the first and the last space, trailing spaces cut; a header
 * value loses its leading spaces and trailing blanks; the first
 * Content-Length and Transfer-Encoding count, TE wins, and only exactly
 * "chunked" is chunked; HEAD and TRACE never have a body, nor does a
 * request without either header; the first Expect of an HTTP/1.1 request
 * with a body must be 100-continue (417 otherwise); a chunk-size line is
 * hex digits, optionally a space and anything, and empty lines between
 * chunks are skipped; a target that is not a path goes to the caller's
 * target_ok (evhttp's URI parser, in the guard). Where evhttp is more
 * lenient the scanner refuses, so the two never disagree on where a
 * request ends; an unknown method and CONNECT (whose target evhttp reads
 * as an authority) are refused too.
 */
#include <string.h>
#include <strings.h>

#include "sched_guard_scan.h"

#define GS_SIZE_LINE_MAX 64
#define GS_LENGTH_DIGITS 18

enum gs_header { H_OTHER, H_LENGTH, H_TE, H_EXPECT };

static const char *const gs_methods[] = { "GET", "POST", "HEAD", "PUT",
	"DELETE", "OPTIONS", "TRACE", "CONNECT", "PATCH" };

static int
gs_refuse(struct gscan *g, int status, const char *code, const char *message,
    enum gs_verdict *v)
{
	g->status = status;
	g->code = code;
	g->message = message;
	*v = GS_REFUSE;
	return (1);
}

static int
gs_bad(struct gscan *g, const char *message, enum gs_verdict *v)
{
	return (gs_refuse(g, 400, "bad_request", message, v));
}

static void
gs_line_reset(struct gscan *g)
{
	g->col = 0;
	g->cr = 0;
	g->fold = 0;
	g->in_value = 0;
	g->which = H_OTHER;
	g->nlen = 0;
	g->vlen = 0;
	g->vover = 0;
	g->size = 0;
	g->digits = 0;
	g->after_size = 0;
}

/* Ready for the next request's head. */
static void
gs_next_head(struct gscan *g)
{
	g->phase = GP_HEAD;
	g->hlen = 0;
	g->line = 0;
	g->mlen = 0;
	g->in_rest = 0;
	g->rlen = g->tlen = g->spaces = 0;
	memset(g->tail, 0, sizeof g->tail);
	g->method[0] = g->target[0] = '\0';
	g->minor = 0;
	g->bodyless = 0;
	g->length = -1;
	g->chunked = 0;
	g->expect_bad = g->expect_seen = 0;
	g->read_prev = 0;
	g->left = g->total = 0;
	gs_line_reset(g);
}

void
gscan_init(struct gscan *g)
{
	size_t	  head_max = g->head_max;
	long long body_max = g->body_max;
	int (*target_ok)(const char *, int) = g->target_ok;

	memset(g, 0, sizeof *g);
	g->head_max = head_max;
	g->body_max = body_max;
	g->target_ok = target_ok;
	gs_next_head(g);
}

void
gscan_let_go(struct gscan *g)
{
	g->held = 0;
}

/* RFC 9110 tchar. */
static int
gs_tchar(unsigned char c)
{
	return ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", (char)c) != NULL));
}

static int
gs_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return (c - '0');
	if (c >= 'a' && c <= 'f')
		return (c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (c - 'A' + 10);
	return (-1);
}

static void
gs_tail_push(struct gscan *g, char c)
{
	memmove(g->tail, g->tail + 1, sizeof g->tail - 1);
	g->tail[sizeof g->tail - 1] = c;
}

static int
gs_reqline_byte(struct gscan *g, unsigned char c, enum gs_verdict *v)
{
	size_t i;

	if (!g->in_rest) {
		if (c != ' ') {
			if (g->mlen + 1 >= GS_METHOD_MAX)
				return (gs_refuse(g, 501, "not_implemented",
				    "an unknown method", v));
			g->method[g->mlen++] = (char)c;
			g->method[g->mlen] = '\0';
			return (0);
		}
		for (i = 0; i < sizeof gs_methods / sizeof gs_methods[0]; i++)
			if (strcmp(g->method, gs_methods[i]) == 0)
				break;
		if (i == sizeof gs_methods / sizeof gs_methods[0])
			return (gs_refuse(
			    g, 501, "not_implemented", "an unknown method", v));
		if (strcmp(g->method, "CONNECT") == 0)
			return (gs_refuse(g, 501, "not_implemented",
			    "CONNECT: the scheduler is no proxy", v));
		g->bodyless = strcmp(g->method, "HEAD") == 0 ||
		    strcmp(g->method, "TRACE") == 0;
		g->in_rest = 1;
		return (0);
	}
	g->rlen++;
	if (g->tlen + 1 < GS_TARGET_MAX) {
		g->target[g->tlen++] = (char)c;
		g->target[g->tlen] = '\0';
	}
	if (c == ' ') {
		g->spaces++;
		return (0);
	}
	for (i = 0; i < g->spaces && i < sizeof g->tail; i++)
		gs_tail_push(g, ' ');
	g->spaces = 0;
	gs_tail_push(g, (char)c);
	return (0);
}

/* The request line ended. */
static int
gs_reqline_end(struct gscan *g, enum gs_verdict *v)
{
	size_t rest = g->rlen - g->spaces;
	int    cut;

	if (g->col == 0) { /* an empty line before it: RFC 9112 2.2 */
		gs_line_reset(g);
		*v = GS_DROP;
		return (1);
	}
	if (!g->in_rest || rest < 1 + sizeof g->tail || g->tail[0] != ' ' ||
	    memcmp(g->tail + 1, "HTTP/1.", 7) != 0 || g->tail[8] < '0' ||
	    g->tail[8] > '9')
		return (gs_bad(g, "not an HTTP/1.x request line", v));
	g->minor = g->tail[8] - '0';
	cut = g->tlen < rest - sizeof g->tail;
	if (!cut) {
		g->tlen = rest - sizeof g->tail;
		g->target[g->tlen] = '\0';
	}
	if (g->target_ok != NULL &&
	    !(g->target[0] == '/' && g->target[1] != '/') &&
	    !g->target_ok(g->target, cut))
		return (gs_bad(g, "a request target libevent cannot parse", v));
	g->line = 1;
	gs_line_reset(g);
	return (0);
}

static int
gs_which(const struct gscan *g)
{
	static const struct {
		const char *name;
		int	    which;
	} names[] = {
		{ "content-length", H_LENGTH },
		{ "transfer-encoding", H_TE },
		{ "expect", H_EXPECT },
	};
	size_t i;

	if (g->nlen >= GS_NAME_MAX)
		return (H_OTHER);
	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strlen(names[i].name) == g->nlen &&
		    memcmp(names[i].name, g->name, g->nlen) == 0)
			return (names[i].which);
	return (H_OTHER);
}

/* A byte of a header or trailer line. */
static int
gs_field_byte(struct gscan *g, unsigned char c, enum gs_verdict *v)
{
	if (g->col == 1 && (c == ' ' || c == '\t')) {
		if (g->line == 1)
			return (gs_bad(g,
			    "a folded line with no header before "
			    "it",
			    v));
		if (g->read_prev)
			return (gs_bad(g,
			    "a folded line continuing "
			    "Content-Length, Transfer-Encoding "
			    "or Expect",
			    v));
		g->fold = 1;
	}
	if (g->fold)
		return (0);
	if (!g->in_value) {
		if (c == ':') {
			if (g->nlen == 0)
				return (gs_bad(g, "a header with no name", v));
			g->which =
			    g->phase == GP_TRAILER ? H_OTHER : gs_which(g);
			g->in_value = 1;
			return (0);
		}
		if (!gs_tchar(c))
			return (
			    gs_bad(g, "a header name that is not a token", v));
		if (g->nlen < GS_NAME_MAX)
			g->name[g->nlen] =
			    (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
		g->nlen++;
		return (0);
	}
	if (g->which == H_OTHER || (g->vlen == 0 && c == ' '))
		return (0);
	if (g->vlen + 1 < GS_VALUE_MAX)
		g->value[g->vlen++] = (char)c;
	else
		g->vover = 1;
	return (0);
}

/* A header line ended: what it says, when it is one we read. */
static int
gs_field_end(struct gscan *g, enum gs_verdict *v)
{
	long long n = 0;
	size_t	  i;

	if (g->fold)
		goto next;
	if (!g->in_value)
		return (gs_bad(g, "a header line without ':'", v));
	while (g->vlen > 0 &&
	    (g->value[g->vlen - 1] == ' ' || g->value[g->vlen - 1] == '\t'))
		g->vlen--;
	g->value[g->vlen] = '\0';
	switch (g->which) {
	case H_LENGTH:
		if (g->length >= 0)
			return (gs_bad(g, "two Content-Length headers", v));
		if (g->vover || g->vlen == 0 || g->vlen > GS_LENGTH_DIGITS)
			return (gs_bad(g,
			    "a Content-Length that is not a "
			    "number",
			    v));
		for (i = 0; i < g->vlen; i++) {
			if (g->value[i] < '0' || g->value[i] > '9')
				return (gs_bad(g,
				    "a Content-Length that is "
				    "not a number",
				    v));
			n = n * 10 + (g->value[i] - '0');
		}
		g->length = n;
		break;
	case H_TE:
		if (g->chunked)
			return (gs_bad(g, "two Transfer-Encoding headers", v));
		if (g->vover || strcasecmp(g->value, "chunked") != 0)
			return (gs_bad(g,
			    "a Transfer-Encoding other than "
			    "chunked",
			    v));
		g->chunked = 1;
		break;
	case H_EXPECT:
		if (!g->expect_seen)
			g->expect_bad = g->vover ||
			    strcasecmp(g->value, "100-continue") != 0;
		g->expect_seen = 1;
		break;
	}
	g->read_prev = g->which != H_OTHER;
next:
	g->line++;
	gs_line_reset(g);
	return (0);
}

/* The empty line after the headers: the head is whole. */
static int
gs_head_end(struct gscan *g, enum gs_verdict *v)
{
	int body = g->chunked || g->length > 0;

	if (g->chunked && g->length >= 0)
		return (
		    gs_bad(g, "both Content-Length and Transfer-Encoding", v));
	if (g->bodyless && body)
		return (gs_bad(g, "a body on a HEAD or TRACE request", v));
	if (body && g->minor >= 1 && g->expect_bad)
		return (gs_refuse(g, 417, "expectation_failed",
		    "the only Expect known is 100-continue", v));
	if (g->length > g->body_max)
		return (gs_refuse(g, 413, "payload_too_large",
		    "the body is over body-max-bytes", v));
	*v = GS_PASS;
	gs_line_reset(g);
	if (g->chunked) {
		g->phase = GP_SIZE;
		g->total = 0;
	} else if (g->length > 0) {
		g->phase = GP_LENGTH;
		g->left = g->length;
	} else
		gs_next_head(g);
	return (1);
}

static int
gs_size_byte(struct gscan *g, unsigned char c, enum gs_verdict *v)
{
	int d;

	if (g->col > GS_SIZE_LINE_MAX)
		return (gs_bad(g, "a chunk-size line over 64 bytes", v));
	if (g->after_size)
		return (0);
	if ((d = gs_hex(c)) >= 0) {
		if (++g->digits > 15)
			return (gs_bad(g, "a chunk size over 15 digits", v));
		g->size = g->size * 16 + d;
		return (0);
	}
	if (c == ' ' && g->digits > 0) {
		g->after_size = 1;
		return (0);
	}
	return (gs_bad(g,
	    c == ';' ? "a chunk extension (none is read)"
		     : "a chunk size that is not hexadecimal",
	    v));
}

static int
gs_size_end(struct gscan *g, enum gs_verdict *v)
{
	long long size = g->size;

	if (g->col > 0 && g->total + size > g->body_max)
		return (gs_refuse(g, 413, "payload_too_large",
		    "the body is over body-max-bytes", v));
	if (g->col > 0 && size == 0) { /* held with the trailers */
		gs_line_reset(g);
		g->phase = GP_TRAILER;
		g->line = 1;
		return (0);
	}
	if (g->col > 0) {
		g->total += size;
		g->phase = GP_DATA;
		g->left = size;
	}
	gs_line_reset(g);
	*v = GS_PASS;
	return (1);
}

/* One byte of a line; 1 when it gave a verdict. */
static int
gs_line_byte(struct gscan *g, unsigned char c, enum gs_verdict *v)
{
	if (g->phase != GP_SIZE && ++g->hlen > g->head_max)
		return (gs_refuse(g, 431, "headers_too_large",
		    "the request line and headers are over header-max-bytes",
		    v));
	if (g->cr && c != '\n')
		return (gs_bad(g, "a CR that does not end a line", v));
	if (c == '\r') {
		g->cr = 1;
		return (0);
	}
	if (c == '\n') {
		g->cr = 0;
		switch (g->phase) {
		case GP_SIZE:
			return (gs_size_end(g, v));
		case GP_TRAILER:
			if (g->col > 0)
				return (gs_field_end(g, v));
			gs_next_head(g);
			*v = GS_PASS;
			return (1);
		default:
			if (g->line == 0)
				return (gs_reqline_end(g, v));
			if (g->col > 0)
				return (gs_field_end(g, v));
			return (gs_head_end(g, v));
		}
	}
	if ((c < 0x20 && c != '\t') || c == 0x7f)
		return (gs_bad(g, "a control byte in a head or chunk line", v));
	g->col++;
	if (g->phase == GP_SIZE)
		return (gs_size_byte(g, c, v));
	if (g->phase == GP_HEAD && g->line == 0)
		return (gs_reqline_byte(g, c, v));
	return (gs_field_byte(g, c, v));
}

size_t
gscan_feed(struct gscan *g, const char *p, size_t n, enum gs_verdict *v)
{
	size_t i = 0, k;

	*v = GS_MORE;
	while (i < n) {
		if (g->phase == GP_LENGTH || g->phase == GP_DATA) {
			k = (size_t)g->left < n - i ? (size_t)g->left : n - i;
			i += k;
			g->held += k;
			g->left -= k;
			if (g->left == 0 && g->phase == GP_DATA)
				g->phase = GP_SIZE;
			else if (g->left == 0)
				gs_next_head(g);
			*v = GS_PASS;
			return (i);
		}
		g->held++;
		if (gs_line_byte(g, (unsigned char)p[i++], v))
			return (i);
	}
	return (i);
}
