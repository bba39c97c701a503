/*
 * Inputs and the thread pool. URL downloads go to a small HTTP server on
 * 127.0.0.1 run by this file (a thread; bounded, it stops with the test):
 * loopback is refused by default, and with allow_private set the caps on
 * size, redirects and time are exercised for real.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "inputs.h"
#include "tpool.h"
#include "unit.h"

static void
test_base64(void)
{
	unsigned char *b;
	size_t	       len;
	char	       err[256];

	ASSERT_EQ(inputs_fetch("aGVsbG8=", NULL, &b, &len, err, sizeof err), 0);
	ASSERT_EQ(len, 5);
	ASSERT_EQ(memcmp(b, "hello", 5), 0);
	free(b);
	ASSERT_EQ(
	    inputs_fetch("aGVs\nbG8", NULL, &b, &len, err, sizeof err), 0);
	ASSERT_EQ(len, 5);
	free(b);
	ASSERT_EQ(inputs_fetch("data:image/png;base64,/_-+", NULL, &b, &len,
		      err, sizeof err),
	    0);
	ASSERT_EQ(len, 3);
	ASSERT_EQ(b[0], 0xff);
	ASSERT_EQ(b[1], 0xff);
	ASSERT_EQ(b[2], 0xbe);
	free(b);
	ASSERT_EQ(inputs_fetch("", NULL, &b, &len, err, sizeof err), -1);
	ASSERT_STREQ(err, "empty");
	ASSERT_EQ(
	    inputs_fetch("aGV*bG8=", NULL, &b, &len, err, sizeof err), -1);
	ASSERT_STREQ(err, "not base64 (byte 3)");
	ASSERT_EQ(inputs_fetch("aGVsb", NULL, &b, &len, err, sizeof err), -1);
	ASSERT_STREQ(err, "not base64 (bad length)");
	ASSERT_EQ(inputs_fetch("aG=Vs", NULL, &b, &len, err, sizeof err), -1);
	ASSERT_STREQ(err, "not base64 (byte 3)");
	ASSERT_EQ(inputs_fetch(
		      "data:image/png,abcd", NULL, &b, &len, err, sizeof err),
	    -1);
	ASSERT_STREQ(err, "a data URI must be data:<type>;base64,<data>");
	ASSERT_EQ(inputs_fetch("ftp://example.com/a.png", NULL, &b, &len, err,
		      sizeof err),
	    -1);
	ASSERT_STREQ(err, "only http:// and https:// URLs are fetched");
	ASSERT_TRUE(b == NULL);
}

static void
test_base64_cap(void)
{
	struct inputs_opts o = inputs_opts_default;
	unsigned char	  *b;
	size_t		   len;
	char		   err[256];

	o.max_bytes = 4;
	ASSERT_EQ(inputs_fetch("aGVsbG8=", &o, &b, &len, err, sizeof err), -1);
	ASSERT_STREQ(err, "over the 4 byte limit");
	o.max_bytes = 5;
	ASSERT_EQ(inputs_fetch("aGVsbG8=", &o, &b, &len, err, sizeof err), 0);
	free(b);
}

static int
blocked(const char *ip)
{
	struct sockaddr_in6 s6;
	struct sockaddr_in  s4;

	memset(&s4, 0, sizeof s4);
	memset(&s6, 0, sizeof s6);
	if (inet_pton(AF_INET, ip, &s4.sin_addr) == 1) {
		s4.sin_family = AF_INET;
		return (inputs_addr_blocked((struct sockaddr *)&s4));
	}
	if (inet_pton(AF_INET6, ip, &s6.sin6_addr) != 1)
		unit_fail(__FILE__, __LINE__, "bad test address %s", ip);
	s6.sin6_family = AF_INET6;
	return (inputs_addr_blocked((struct sockaddr *)&s6));
}

static void
test_addresses(void)
{
	static const char *const bad[] = { "127.0.0.1", "127.255.0.9",
		"10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
		"255.255.255.255", "::1", "::", "fe80::1", "fc00::1",
		"fd12:3456::1", "ff02::1", "::ffff:127.0.0.1",
		"::ffff:169.254.169.254", "64:ff9b::10.0.0.1" };
	static const char *const good[] = { "8.8.8.8", "1.1.1.1", "172.32.0.1",
		"192.169.0.1", "100.128.0.1", "2606:4700::1111",
		"::ffff:8.8.8.8", "2001:db8::1" };
	size_t			 i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (!blocked(bad[i]))
			unit_fail(__FILE__, __LINE__, "%s not blocked", bad[i]);
	for (i = 0; i < sizeof good / sizeof good[0]; i++)
		if (blocked(good[i]))
			unit_fail(__FILE__, __LINE__, "%s blocked", good[i]);
	unit_checks += (int)(i + sizeof bad / sizeof bad[0]);
}

/* The test server: one connection at a time, a few canned answers. */
struct srv {
	int	  fd, port, stop;
	pthread_t thread;
};

static void
srv_send(int c, const char *head, const char *body, size_t blen)
{
	(void)!send(c, head, strlen(head), MSG_NOSIGNAL);
	if (blen > 0)
		(void)!send(c, body, blen, MSG_NOSIGNAL);
}

static void
srv_answer(int c, const char *path)
{
	static char big[3 << 20];
	char	    head[256];
	int	    n;

	if (strcmp(path, "/ok") == 0)
		srv_send(c,
		    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
		    "Connection: close\r\n\r\n",
		    "hello", 5);
	else if (strcmp(path, "/big") == 0) {
		/* No length: the cap must hold while the body arrives. */
		memset(big, 'x', sizeof big);
		srv_send(c, "HTTP/1.0 200 OK\r\n\r\n", big, sizeof big);
	} else if (sscanf(path, "/r/%d", &n) == 1) {
		snprintf(head, sizeof head,
		    "HTTP/1.1 302 Found\r\nLocation: %s\r\n"
		    "Content-Length: 0\r\nConnection: close\r\n\r\n",
		    n > 1 ? "" : "/ok");
		if (n > 1)
			snprintf(head, sizeof head,
			    "HTTP/1.1 302 Found\r\nLocation: /r/%d\r\n"
			    "Content-Length: 0\r\nConnection: close\r\n\r\n",
			    n - 1);
		srv_send(c, head, "", 0);
	} else if (strcmp(path, "/slow") == 0) {
		usleep(1500 * 1000);
		srv_send(
		    c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n", "x", 1);
	} else
		srv_send(c,
		    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
		    "Connection: close\r\n\r\n",
		    "", 0);
}

static void *
srv_main(void *arg)
{
	struct srv *s = arg;
	char	    req[2048], path[512];
	ssize_t	    n;
	int	    c, served = 0;

	while (!s->stop && served++ < 100) {
		if ((c = accept(s->fd, NULL, NULL)) == -1)
			break;
		n = recv(c, req, sizeof req - 1, 0);
		if (n > 0) {
			req[n] = '\0';
			if (sscanf(req, "GET %511s", path) == 1)
				srv_answer(c, path);
		}
		close(c);
	}
	return (NULL);
}

static void
srv_start(struct srv *s)
{
	struct sockaddr_in a;
	socklen_t	   alen = sizeof a;

	memset(s, 0, sizeof *s);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	ASSERT_TRUE(s->fd != -1);
	ASSERT_EQ(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
	ASSERT_EQ(listen(s->fd, 8), 0);
	ASSERT_EQ(getsockname(s->fd, (struct sockaddr *)&a, &alen), 0);
	s->port = ntohs(a.sin_port);
	ASSERT_EQ(pthread_create(&s->thread, NULL, srv_main, s), 0);
}

static void
srv_stop(struct srv *s)
{
	s->stop = 1;
	shutdown(s->fd, SHUT_RDWR);
	close(s->fd);
	pthread_join(s->thread, NULL);
}

static int
get(const struct srv *s, const char *path, const struct inputs_opts *o,
    char *err, size_t errlen, size_t *len)
{
	unsigned char *b;
	char	       url[128];
	int	       rc;

	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
	rc = inputs_fetch(url, o, &b, len, err, errlen);
	free(b);
	return (rc);
}

static void
test_urls(void)
{
	struct inputs_opts o = inputs_opts_default;
	struct srv	   s;
	char		   err[256];
	size_t		   len;

	inputs_global_init();
	srv_start(&s);
	/* Loopback is refused by default, before any byte is sent. */
	ASSERT_EQ(get(&s, "/ok", NULL, err, sizeof err, &len), -1);
	ASSERT_STREQ(err,
	    "refused: 127.0.0.1 is a private, loopback or link-local address");
	o.allow_private = 1;
	ASSERT_EQ(get(&s, "/ok", &o, err, sizeof err, &len), 0);
	ASSERT_EQ(len, 5);
	ASSERT_EQ(get(&s, "/r/3", &o, err, sizeof err, &len), 0);
	ASSERT_EQ(len, 5);
	ASSERT_EQ(get(&s, "/r/4", &o, err, sizeof err, &len), -1);
	ASSERT_STREQ(err, "more than 3 redirects");
	ASSERT_EQ(get(&s, "/missing", &o, err, sizeof err, &len), -1);
	ASSERT_STREQ(err, "HTTP 404");
	o.max_bytes = 1 << 20;
	ASSERT_EQ(get(&s, "/big", &o, err, sizeof err, &len), -1);
	ASSERT_STREQ(err, "over the 1048576 byte limit");
	o.timeout_ms = 300;
	ASSERT_EQ(get(&s, "/slow", &o, err, sizeof err, &len), -1);
	ASSERT_STREQ(err, "timed out after 300 ms");
	srv_stop(&s);
}

/* Thread pool: every done runs on the loop thread, once per job. */
struct tp_job {
	pthread_t	   loop;
	int		   value, worked_off_loop, done_on_loop;
	int		  *done_count;
	struct event_base *base;
};

static void
tp_work(void *arg)
{
	struct tp_job *j = arg;

	j->worked_off_loop = !pthread_equal(pthread_self(), j->loop);
	j->value *= 2;
	usleep(1000);
}

static void
tp_done(void *arg)
{
	struct tp_job *j = arg;

	j->done_on_loop = pthread_equal(pthread_self(), j->loop);
	if (++*j->done_count == 20)
		event_base_loopbreak(j->base);
}

static void
test_tpool(void)
{
	struct event_base *base = event_base_new();
	struct tpool	  *p = tpool_new(base, 3);
	struct tp_job	   jobs[25];
	int		   i, done = 0;

	for (i = 0; i < 25; i++) {
		jobs[i].loop = pthread_self();
		jobs[i].value = i;
		jobs[i].done_count = &done;
		jobs[i].base = base;
		jobs[i].worked_off_loop = jobs[i].done_on_loop = 0;
	}
	for (i = 0; i < 20; i++)
		ASSERT_EQ(tpool_submit(p, tp_work, tp_done, &jobs[i]), 0);
	event_base_dispatch(base);
	ASSERT_EQ(done, 20);
	for (i = 0; i < 20; i++) {
		ASSERT_EQ(jobs[i].value, 2 * i);
		ASSERT_EQ(jobs[i].worked_off_loop, 1);
		ASSERT_EQ(jobs[i].done_on_loop, 1);
	}
	ASSERT_EQ(tpool_pending(p), 0);
	/* Freeing finishes what was submitted and runs its callbacks. */
	for (i = 20; i < 25; i++)
		ASSERT_EQ(tpool_submit(p, tp_work, tp_done, &jobs[i]), 0);
	tpool_free(p);
	ASSERT_EQ(done, 25);
	for (i = 20; i < 25; i++)
		ASSERT_EQ(jobs[i].value, 2 * i);
	event_base_free(base);
}

const struct unit_test test_inputs[] = {
	{ "base64", test_base64 },
	{ "base64_cap", test_base64_cap },
	{ "addresses", test_addresses },
	{ "urls", test_urls },
	{ "tpool", test_tpool },
	{ NULL, NULL },
};
