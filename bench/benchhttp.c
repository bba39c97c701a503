/*
 * The benchmarks' HTTP/1.1 client (see benchhttp.h): plain blocking
 * sockets, a request written whole, a reply read by its Content-Length;
 * an SSE stream de-chunked (Transfer-Encoding: chunked, as evhttp sends a
 * reply it starts) and split into frames at blank lines.
 */
#define _GNU_SOURCE /* memmem */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "benchhttp.h"
#include "benchlib.h"
#include "util.h"
#include "xmalloc.h"

/* A free TCP port on 127.0.0.1 (bound and released: good enough here). */
int
free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t	   len = sizeof a;
	int		   fd, port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&a, sizeof a) == -1 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) == -1)
		bench_die("free port", strerror(errno));
	port = ntohs(a.sin_port);
	close(fd);
	return (port);
}

/* A blocking connection to the scheduler, Nagle off; -1 on failure. */
int
http_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int		   fd, one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		bench_die("socket", strerror(errno));
	if (connect(fd, (struct sockaddr *)&a, sizeof a) == -1) {
		close(fd);
		return (-1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return (fd);
}

void
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			bench_die("write", strerror(errno));
		}
		p += w;
		n -= (size_t)w;
	}
}

/*
 * One request on fd and its reply (Content-Length delimited); the status,
 * or -1 when the connection ended. The body goes to body (NUL-ended).
 */
int
http_call(int fd, const char *req, char *body, size_t bodylen)
{
	char	buf[RAW_MAX];
	size_t	len = 0, hl, cl;
	char   *e, *p;
	ssize_t r;

	write_all(fd, req, strlen(req));
	for (;;) {
		if (len == sizeof buf - 1)
			bench_die("reply", "headers too long");
		if ((r = read(fd, buf + len, sizeof buf - 1 - len)) <= 0)
			return (-1);
		len += (size_t)r;
		buf[len] = '\0';
		if ((e = strstr(buf, "\r\n\r\n")) != NULL)
			break;
	}
	hl = (size_t)(e + 4 - buf);
	*e = '\0';
	cl = 0;
	for (p = buf; (p = strchr(p, '\n')) != NULL; p++)
		if (strncasecmp(p + 1, "content-length:", 15) == 0)
			cl = strtoul(p + 16, NULL, 10);
	if (cl >= bodylen || cl > sizeof buf - 1 - hl)
		bench_die("reply", "body too long");
	while (len < hl + cl) {
		if ((r = read(fd, buf + len, hl + cl - len)) <= 0)
			return (-1);
		len += (size_t)r;
	}
	memcpy(body, buf + hl, cl);
	body[cl] = '\0';
	return (atoi(buf + 9));
}

/* Opens an SSE request for path; 0, or -1 when the connect failed. */
int
sc_open(struct sc *s, int port, const char *path)
{
	char req[256];

	memset(s, 0, offsetof(struct sc, raw));
	if ((s->fd = http_connect(port)) == -1)
		return (-1);
	snprintf(req, sizeof req,
	    "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: "
	    "text/event-stream\r\n\r\n",
	    path);
	write_all(s->fd, req, strlen(req));
	return (0);
}

void
sc_close(struct sc *s)
{
	if (s->fd != -1)
		close(s->fd);
	s->fd = -1;
}

/* Splits the body into frames; notes the terminal one's id. */
static void
sc_frames(struct sc *s)
{
	char *end, *ev, *id;
	int   n;

	while ((end = memmem(s->body, s->blen, "\n\n", 2)) != NULL) {
		*end = '\0';
		ev = strstr(s->body, "event: ");
		id = strncmp(s->body, "id: ", 4) == 0 ? s->body + 4 : NULL;
		if (ev != NULL) {
			s->frames++;
			ev += 7;
			if (strncmp(ev, "succeeded", 9) == 0 ||
			    strncmp(ev, "failed", 6) == 0 ||
			    strncmp(ev, "canceled", 8) == 0) {
				s->terminal = 1;
				n = id != NULL ? (int)strcspn(id, "\n") : 0;
				snprintf(s->term_id, sizeof s->term_id, "%.*s",
				    n, id != NULL ? id : "");
			}
		}
		s->blen -= (size_t)(end + 2 - s->body);
		memmove(s->body, end + 2, s->blen);
	}
	if (s->blen == sizeof s->body)
		bench_die("sse", "a frame longer than the buffer");
}

static void
sc_take(struct sc *s, size_t n)
{
	if (n > sizeof s->body - s->blen)
		n = sizeof s->body - s->blen;
	memcpy(s->body + s->blen, s->raw, n);
	s->blen += n;
	s->rlen -= n;
	memmove(s->raw, s->raw + n, s->rlen);
	sc_frames(s);
}

/* Reads what is there; -1 at the end of the stream or an error. */
int
sc_read(struct sc *s)
{
	char   *e;
	ssize_t r;
	size_t	n;

	if ((r = read(s->fd, s->raw + s->rlen, sizeof s->raw - 1 - s->rlen)) <=
	    0)
		return (r == -1 && errno == EAGAIN ? 0 : -1);
	s->rlen += (size_t)r;
	s->raw[s->rlen] = '\0';
	if (!s->hdr) {
		if ((e = strstr(s->raw, "\r\n\r\n")) == NULL)
			return (0);
		*e = '\0';
		s->hdr = 1;
		s->status = atoi(s->raw + 9);
		s->chunked =
		    str_icontains(s->raw, "transfer-encoding: chunked");
		n = (size_t)(e + 4 - s->raw);
		s->rlen -= n;
		memmove(s->raw, s->raw + n, s->rlen);
	}
	while (s->rlen > 0) {
		if (!s->chunked)
			sc_take(s, s->rlen);
		else if (s->cst == 0) {
			if ((e = memmem(s->raw, s->rlen, "\r\n", 2)) == NULL)
				break;
			s->left = strtoll(s->raw, NULL, 16);
			if (s->left == 0)
				return (-1); /* the last chunk */
			n = (size_t)(e + 2 - s->raw);
			s->rlen -= n;
			memmove(s->raw, s->raw + n, s->rlen);
			s->cst = 1;
		} else if (s->cst == 1) {
			n = s->rlen < (size_t)s->left ? s->rlen
						      : (size_t)s->left;
			sc_take(s, n);
			if ((s->left -= (long long)n) == 0)
				s->cst = 2;
		} else {
			if (s->rlen < 2)
				break;
			s->rlen -= 2;
			memmove(s->raw, s->raw + 2, s->rlen);
			s->cst = 0;
		}
	}
	return (0);
}

/*
 * Waits until pred holds for every open client of cs[0..n), reading them
 * all; a client whose stream ends is closed. Returns how many hold.
 */
int
sc_wait(struct sc *cs, int n, int (*pred)(const struct sc *), int ms)
{
	struct pollfd *p = xcalloc((size_t)n, sizeof *p);
	long long      start = clock_mono_ms();
	int	       i, done, np;

	for (;;) {
		done = np = 0;
		for (i = 0; i < n; i++) {
			if (cs[i].fd != -1 && pred(&cs[i]))
				done++;
			p[i].fd =
			    cs[i].fd != -1 && !pred(&cs[i]) ? cs[i].fd : -1;
			p[i].events = POLLIN;
			np += p[i].fd != -1;
		}
		if (np == 0 || clock_mono_ms() - start > ms)
			break;
		if (poll(p, (nfds_t)n, 100) == -1 && errno != EINTR)
			bench_die("poll", strerror(errno));
		for (i = 0; i < n; i++)
			if (p[i].fd != -1 &&
			    (p[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    sc_read(&cs[i]) == -1)
				sc_close(&cs[i]);
	}
	free(p);
	return (done);
}

int
sc_attached(const struct sc *s)
{
	return (s->hdr);
}

int
sc_got_frame(const struct sc *s)
{
	return (s->frames > 0);
}
