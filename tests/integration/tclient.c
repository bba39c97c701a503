/*
 * The test HTTP client (see tclient.h). Bytes from the socket go to raw;
 * once the headers are parsed, the body is decoded from raw into body
 * (chunks unwrapped), where events are read from evpos on.
 */
#include <netinet/in.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tclient.h"
#include "util.h"
#include "xmalloc.h"

struct buf {
	char  *p;
	size_t len, cap;
};

struct tc {
	int	   fd;
	struct buf raw, body;
	size_t	   rawpos; /* decoded up to here */
	size_t	   evpos;  /* events read up to here */
	char	  *headers;
	int	   status;
	int	   chunked;
	long	   clen; /* -1: none */
	int	   ended;
	int	   eof;
	int	   kas;
};

static void
buf_add(struct buf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

struct tc *
tc_open(int port, const char *path, const char *last_id, int rcvbuf)
{
	struct tc	  *c = xcalloc(1, sizeof *c);
	struct sockaddr_in sin;
	char		   req[1024];
	int		   n;

	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (rcvbuf > 0)
		setsockopt(
		    c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->clen = -1;
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof sin) == -1) {
		c->eof = 1;
		return (c);
	}
	n = snprintf(req, sizeof req,
	    "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s\r\n", path,
	    last_id ? "Last-Event-ID: " : "", last_id ? last_id : "",
	    last_id ? "\r\n" : "");
	if (write(c->fd, req, (size_t)n) != n)
		c->eof = 1;
	return (c);
}

void
tc_close(struct tc *c)
{
	close(c->fd);
	free(c->raw.p);
	free(c->body.p);
	free(c->headers);
	free(c);
}

/* Reads what comes within ms; 0 when something came or EOF, -1 timeout. */
static int
tc_read(struct tc *c, int ms)
{
	struct pollfd pfd = { c->fd, POLLIN, 0 };
	char	      b[65536];
	ssize_t	      n;

	if (c->eof)
		return (-1);
	if (poll(&pfd, 1, ms) <= 0)
		return (-1);
	n = recv(c->fd, b, sizeof b, 0);
	if (n <= 0) {
		c->eof = 1;
		return (0);
	}
	buf_add(&c->raw, b, (size_t)n);
	return (0);
}

/* Moves what raw holds of the body into body. */
static void
tc_decode(struct tc *c)
{
	char	     *crlf, *end;
	unsigned long size;

	if (c->headers == NULL)
		return;
	while (c->rawpos < c->raw.len && !c->ended) {
		if (!c->chunked) {
			buf_add(&c->body, c->raw.p + c->rawpos,
			    c->raw.len - c->rawpos);
			c->rawpos = c->raw.len;
			return;
		}
		if ((crlf = strstr(c->raw.p + c->rawpos, "\r\n")) == NULL)
			return;
		size = strtoul(c->raw.p + c->rawpos, &end, 16);
		if ((size_t)(c->raw.p + c->raw.len - (crlf + 2)) < size + 2)
			return; /* not all here yet */
		if (size == 0) {
			c->ended = 1;
			return;
		}
		buf_add(&c->body, crlf + 2, size);
		c->rawpos = (size_t)(crlf + 2 + size + 2 - c->raw.p);
	}
}

static long long
tc_left(long long deadline)
{
	long long left = deadline - clock_mono_ms();

	return (left > 0 ? left : 0);
}

int
tc_status(struct tc *c, int ms)
{
	long long deadline = clock_mono_ms() + ms;
	char	 *e;
	size_t	  n;

	while (c->headers == NULL) {
		if (c->raw.p != NULL &&
		    (e = strstr(c->raw.p, "\r\n\r\n")) != NULL) {
			n = (size_t)(e - c->raw.p) + 2;
			c->headers = xstrndup(c->raw.p, n);
			c->rawpos = n + 2;
			c->status = atoi(c->headers + 9);
			c->chunked =
			    strcasecmp(tc_header(c, "Transfer-Encoding"),
				"chunked") == 0;
			if (*tc_header(c, "Content-Length") != '\0')
				c->clen = atol(tc_header(c, "Content-Length"));
			break;
		}
		if (tc_read(c, (int)tc_left(deadline)) == -1 || c->eof)
			if (c->raw.p == NULL ||
			    strstr(c->raw.p, "\r\n\r\n") == NULL)
				return (-1);
	}
	tc_decode(c);
	return (c->status);
}

const char *
tc_header(struct tc *c, const char *name)
{
	static char v[512];
	const char *p;
	size_t	    n = strlen(name);

	v[0] = '\0';
	for (p = strstr(c->headers, "\r\n"); p != NULL; p = strstr(p, "\r\n")) {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			sscanf(p + n + 1, " %511[^\r]", v);
			break;
		}
	}
	return (v);
}

const char *
tc_body(struct tc *c, int ms)
{
	long long deadline = clock_mono_ms() + ms;

	if (tc_status(c, ms) == -1)
		return ("");
	while (!c->ended && !c->eof &&
	    !(c->clen >= 0 && c->body.len >= (size_t)c->clen)) {
		if (tc_read(c, (int)tc_left(deadline)) == -1)
			break;
		tc_decode(c);
	}
	return (c->body.p != NULL ? c->body.p : "");
}

/* Parses one block of body at evpos into ev; 1 event, 0 comment only, -1
 * none complete yet. */
static int
tc_block(struct tc *c, struct tc_ev *ev)
{
	char *start, *end, *line, *nl;
	int   fields = 0;

	if (c->body.p == NULL ||
	    (end = strstr(c->body.p + c->evpos, "\n\n")) == NULL)
		return (-1);
	start = c->body.p + c->evpos;
	c->evpos = (size_t)(end + 2 - c->body.p);
	memset(ev, 0, sizeof *ev);
	for (line = start; line <= end; line = nl + 1) {
		nl = strchr(line, '\n');
		*nl = '\0';
		if (strncmp(line, "id: ", 4) == 0)
			snprintf(ev->id, sizeof ev->id, "%s", line + 4),
			    fields++;
		else if (strncmp(line, "event: ", 7) == 0)
			snprintf(ev->type, sizeof ev->type, "%s", line + 7);
		else if (strncmp(line, "data: ", 6) == 0)
			snprintf(ev->data, sizeof ev->data, "%s", line + 6);
		*nl = '\n';
	}
	if (fields == 0) {
		c->kas++;
		return (0);
	}
	return (1);
}

int
tc_event(struct tc *c, struct tc_ev *ev, int ms)
{
	long long deadline = clock_mono_ms() + ms;
	int	  r;

	if (tc_status(c, ms) == -1)
		return (-1);
	for (;;) {
		while ((r = tc_block(c, ev)) == 0)
			;
		if (r == 1)
			return (1);
		if (c->ended)
			return (0);
		if (c->eof || tc_read(c, (int)tc_left(deadline)) == -1)
			return (-1);
		tc_decode(c);
	}
}

int
tc_ended(const struct tc *c)
{
	return (c->ended);
}

int
tc_keepalives(const struct tc *c)
{
	return (c->kas);
}

int
tc_eof(struct tc *c, int ms)
{
	long long deadline = clock_mono_ms() + ms;

	while (!c->eof && tc_left(deadline) > 0)
		if (tc_read(c, (int)tc_left(deadline)) == -1)
			break;
	return (c->eof);
}

const char *
tc_raw(struct tc *c)
{
	return (c->body.p != NULL ? c->body.p : "");
}
