/*
 * The WebSocket client (shared/ws.c). Against comfyq-sim: open, messages
 * both ways, pings answered, localhost and a hosts-file name. Against a
 * scripted server in this process (an evconnlistener on the same loop)
 * that answers the upgrade as told and then sends hand-made frames:
 * fragments with a ping in between, masked and reserved-opcode frames,
 * an oversized message, bad UTF-8, a close, a refused or silent or wrong
 * handshake, a missing pong. Each case checks the callbacks and their
 * counts, the reason given to on_close, and the frames the client sent
 * back; ws_free from inside callbacks must be clean under ASan.
 */
#define _GNU_SOURCE /* strcasestr */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "../integration/itest.h"
#include "simtest.h"
#include "util.h"
#include "ws.h"
#include "xmalloc.h"

enum fake_mode { FK_OK, FK_403, FK_BADKEY, FK_SILENT };

struct fake {
	struct event_base     *base;
	struct evconnlistener *l;
	struct bufferevent    *bev;
	int		       port;
	enum fake_mode	       mode;
	struct evbuffer	      *script; /* frames sent after the handshake */
	struct evbuffer	      *got;    /* what the client sent after it */
	int		       upgraded;
	int		       saw_origin;
};

struct cl {
	struct event_base *base;
	struct ws	  *ws;
	int		   opens, closes, texts, bins;
	int		   free_in_text, free_in_close;
	char		   reason[160];
	char		   last[8192];
	size_t		   lastlen;
};

/* A server frame: unmasked unless asked. */
static void
frame(struct evbuffer *b, int fin, int op, const void *p, size_t n, int mask)
{
	unsigned char h[14], m[4] = { 1, 2, 3, 4 }, c;
	size_t	      hl = 2, i;

	h[0] = (unsigned char)((fin ? 0x80 : 0) | op);
	if (n < 126)
		h[1] = (unsigned char)n;
	else {
		h[1] = 126;
		h[2] = (unsigned char)(n >> 8);
		h[3] = (unsigned char)n;
		hl = 4;
	}
	if (mask) {
		h[1] |= 0x80;
		memcpy(h + hl, m, 4);
		hl += 4;
	}
	evbuffer_add(b, h, hl);
	for (i = 0; i < n; i++) {
		c = (unsigned char)(((const unsigned char *)p)[i] ^
		    (mask ? m[i % 4] : 0));
		evbuffer_add(b, &c, 1);
	}
}

/* The first frame the client sent: opcode, and the unmasked payload.
 * Returns 0, or -1 when none (or an unmasked one) is there. */
static int
client_frame(struct fake *f, int *op, char *out, size_t *len)
{
	unsigned char *p;
	size_t	       have = evbuffer_get_length(f->got), n, i, hl = 2;

	if (have < 6)
		return (-1);
	p = evbuffer_pullup(f->got, -1);
	if (!(p[1] & 0x80))
		return (-1);
	n = p[1] & 0x7f;
	if (n == 126) {
		n = (size_t)p[2] << 8 | p[3];
		hl = 4;
	}
	if (have < hl + 4 + n)
		return (-1);
	*op = p[0] & 0x0f;
	for (i = 0; i < n; i++)
		out[i] = (char)(p[hl + 4 + i] ^ p[hl + i % 4]);
	*len = n;
	return (0);
}

static void
fake_read(struct bufferevent *bev, void *arg)
{
	struct fake	   *f = arg;
	struct evbuffer	   *in = bufferevent_get_input(bev);
	struct evbuffer	   *out = bufferevent_get_output(bev);
	struct evbuffer_ptr p;
	char		   *head, *k, accept[WS_ACCEPT_LEN], key[64];
	size_t		    n;

	if (f->upgraded) {
		evbuffer_add_buffer(f->got, in);
		return;
	}
	p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (p.pos < 0)
		return;
	n = (size_t)p.pos + 4;
	head = xmalloc(n + 1);
	evbuffer_remove(in, head, n);
	head[n] = '\0';
	f->saw_origin = strcasestr(head, "\r\nOrigin:") != NULL;
	key[0] = '\0';
	if ((k = strcasestr(head, "Sec-WebSocket-Key: ")) != NULL)
		snprintf(key, sizeof key, "%.*s", (int)strcspn(k + 19, "\r"),
		    k + 19);
	free(head);
	f->upgraded = 1;
	switch (f->mode) {
	case FK_SILENT:
		return;
	case FK_403:
		evbuffer_add_printf(out,
		    "HTTP/1.1 403 Forbidden\r\n"
		    "Content-Length: 0\r\n\r\n");
		return;
	case FK_BADKEY:
		snprintf(accept, sizeof accept, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
		break;
	case FK_OK:
		ws_accept_key(key, accept);
		break;
	}
	evbuffer_add_printf(out,
	    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
	    accept);
	evbuffer_add_buffer(out, f->script);
}

static void
fake_event(struct bufferevent *bev, short what, void *arg)
{
	struct fake *f = arg;

	(void)what;
	bufferevent_free(bev);
	f->bev = NULL;
}

static void
fake_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct fake *f = arg;

	(void)l;
	(void)sa;
	(void)salen;
	f->bev = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(f->bev, fake_read, NULL, fake_event, f);
	bufferevent_enable(f->bev, EV_READ | EV_WRITE);
}

static void
fake_start(struct fake *f, struct event_base *base, enum fake_mode mode)
{
	struct sockaddr_in sin;
	socklen_t	   sl = sizeof sin;

	memset(f, 0, sizeof *f);
	f->base = base;
	f->mode = mode;
	f->script = evbuffer_new();
	f->got = evbuffer_new();
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->l = evconnlistener_new_bind(base, fake_accept, f,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 8,
	    (struct sockaddr *)&sin, sizeof sin);
	ASSERT_TRUE(f->l != NULL);
	getsockname(evconnlistener_get_fd(f->l), (struct sockaddr *)&sin, &sl);
	f->port = ntohs(sin.sin_port);
}

static void
fake_stop(struct fake *f)
{
	if (f->bev != NULL)
		bufferevent_free(f->bev);
	evconnlistener_free(f->l);
	evbuffer_free(f->script);
	evbuffer_free(f->got);
}

static void
cl_open(struct ws *ws, void *arg)
{
	struct cl *c = arg;

	(void)ws;
	c->opens++;
}

static void
cl_text(struct ws *ws, const char *s, size_t n, void *arg)
{
	struct cl *c = arg;

	c->texts++;
	c->lastlen = n < sizeof c->last ? n : sizeof c->last;
	memcpy(c->last, s, c->lastlen);
	if (c->free_in_text) {
		ws_free(ws);
		c->ws = NULL;
	}
}

static void
cl_binary(struct ws *ws, const unsigned char *s, size_t n, void *arg)
{
	struct cl *c = arg;

	(void)ws;
	c->bins++;
	c->lastlen = n < sizeof c->last ? n : sizeof c->last;
	memcpy(c->last, s, c->lastlen);
}

static void
cl_close(struct ws *ws, const char *reason, void *arg)
{
	struct cl *c = arg;

	c->closes++;
	snprintf(c->reason, sizeof c->reason, "%s", reason);
	if (c->free_in_close) {
		ws_free(ws);
		c->ws = NULL;
	}
}

static const struct ws_cb cl_cb = { cl_open, cl_text, cl_binary, cl_close };

static void
loop_for(struct event_base *base, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* Runs the loop until *flag or ms pass. */
static void
loop_until(struct event_base *base, const int *flag, int ms)
{
	long long end = clock_mono_ms() + ms;

	while (!*flag && clock_mono_ms() < end)
		loop_for(base, 10);
}

static void
cl_connect(
    struct cl *c, struct event_base *base, int port, const struct ws_opts *o)
{
	char url[128], err[256];

	memset(c, 0, sizeof *c);
	c->base = base;
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws?clientId=t", port);
	c->ws = ws_connect(base, url, o, &cl_cb, c, err, sizeof err);
	ASSERT_TRUE(c->ws != NULL);
	/* never a callback from inside ws_connect() */
	ASSERT_EQ(c->opens + c->closes, 0);
}

static void
test_bad_urls(void)
{
	static const char *const bad[] = { "http://127.0.0.1/ws", "wss://x/ws",
		"ws://", "ws://h:99999/", "ws://h:abc/", "ws://h x/",
		"ws://[::1/", NULL };
	struct event_base	*base = event_base_new();
	char			 err[256];
	size_t			 i;

	for (i = 0; bad[i] != NULL; i++) {
		err[0] = '\0';
		ASSERT_TRUE(ws_connect(base, bad[i], NULL, &cl_cb, NULL, err,
				sizeof err) == NULL);
		ASSERT_TRUE(strncmp(err, "ws url: ", 8) == 0);
	}
	event_base_free(base);
}

static void
test_against_sim(void)
{
	struct simproc	   s;
	struct event_base *base = event_base_new();
	struct cl	   c;
	struct ws_opts	   o = { 0, 30, 150, 0 };
	char		   url[128], err[256];
	cJSON		  *j;
	static const char  ff[] = "{\"type\":\"feature_flags\",\"data\":{"
				  "\"supports_preview_metadata\":true}}";

	sim_start(&s, NULL);
	memset(&c, 0, sizeof c);
	c.base = base;
	snprintf(url, sizeof url, "ws://localhost:%d/ws?clientId=me", s.port);
	c.ws = ws_connect(base, url, &o, &cl_cb, &c, err, sizeof err);
	ASSERT_TRUE(c.ws != NULL);
	ASSERT_EQ(ws_send_text(c.ws, "x", 1), -1); /* not open yet */
	loop_until(base, &c.texts, 3000);
	ASSERT_EQ(c.opens, 1);
	ASSERT_EQ(c.texts, 1);
	j = cJSON_ParseWithLength(c.last, c.lastlen);
	ASSERT_JSTR(j, "type", "status");
	ASSERT_JSTR(cJSON_GetObjectItemCaseSensitive(j, "data"), "sid", "me");
	cJSON_Delete(j);
	ASSERT_EQ(ws_send_text(c.ws, ff, strlen(ff)), 0);
	while (c.texts < 2 && !c.closes)
		loop_for(base, 10);
	j = cJSON_ParseWithLength(c.last, c.lastlen);
	ASSERT_JSTR(j, "type", "feature_flags");
	ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(j, "data"),
	    "supports_preview_metadata")));
	cJSON_Delete(j);
	/* pings every 30 ms, pongs within 150: the link stays up */
	loop_for(base, 400);
	ASSERT_EQ(c.closes, 0);
	ASSERT_EQ(ws_send_ping(c.ws), 0);
	ws_free(c.ws);
	loop_for(base, 50);
	ASSERT_EQ(c.closes, 0); /* ws_free never calls on_close */
	sim_stop(&s);
	event_base_free(base);
}

/* A name from /etc/hosts that means 127.0.0.1, through the resolver. */
static void
test_resolver(void)
{
	struct simproc	   s;
	struct event_base *base = event_base_new();
	struct cl	   c;
	struct ws_opts	   o = { 1500, 0, 0, 0 };
	char		   url[256], err[256], line[512], name[128] = "";
	FILE		  *f;

	if ((f = fopen("/etc/hosts", "r")) != NULL) {
		while (name[0] == '\0' && fgets(line, sizeof line, f) != NULL) {
			char *tok, *save, *ip = strtok_r(line, " \t\n", &save);

			if (ip == NULL || strcmp(ip, "127.0.0.1") != 0)
				continue;
			while ((tok = strtok_r(NULL, " \t\n", &save)) != NULL)
				if (strcmp(tok, "localhost") != 0) {
					snprintf(name, sizeof name, "%s", tok);
					break;
				}
		}
		fclose(f);
	}
	sim_start(&s, NULL);
	if (name[0] != '\0') {
		memset(&c, 0, sizeof c);
		snprintf(url, sizeof url, "ws://%s:%d/ws", name, s.port);
		c.ws = ws_connect(base, url, &o, &cl_cb, &c, err, sizeof err);
		ASSERT_TRUE(c.ws != NULL);
		loop_until(base, &c.texts, 3000);
		ASSERT_EQ(c.opens, 1);
		ws_free(c.ws);
	} else
		printf("     (no 127.0.0.1 alias in /etc/hosts)\n");
	/* a name that cannot resolve ends in on_close, once */
	memset(&c, 0, sizeof c);
	c.ws = ws_connect(base, "ws://no-such-host.invalid:1/ws", &o, &cl_cb,
	    &c, err, sizeof err);
	ASSERT_TRUE(c.ws != NULL);
	loop_until(base, &c.closes, 5000);
	ASSERT_EQ(c.closes, 1);
	ASSERT_TRUE(
	    strncmp(c.reason, "resolve no-such-host.invalid", 28) == 0 ||
	    strcmp(c.reason, "connect timeout") == 0);
	ASSERT_EQ(ws_send_text(c.ws, "x", 1), -1);
	ws_free(c.ws);
	sim_stop(&s);
	event_base_free(base);
}

static void
test_connect_failures(void)
{
	struct event_base *base = event_base_new();
	struct fake	   f;
	struct cl	   c;
	struct ws_opts	   o = { 200, 0, 0, 0 };
	int		   port;

	/* refused: a port nobody listens on any more */
	fake_start(&f, base, FK_OK);
	port = f.port;
	fake_stop(&f);
	cl_connect(&c, base, port, &o);
	loop_until(base, &c.closes, 2000);
	ASSERT_EQ(c.closes, 1);
	ASSERT_EQ(c.opens, 0);
	ASSERT_TRUE(strncmp(c.reason, "connect: ", 9) == 0);
	loop_for(base, 50);
	ASSERT_EQ(c.closes, 1);
	ws_free(c.ws);
	/* a server that never answers the upgrade */
	fake_start(&f, base, FK_SILENT);
	cl_connect(&c, base, f.port, &o);
	loop_until(base, &c.closes, 2000);
	ASSERT_STREQ(c.reason, "connect timeout");
	ASSERT_EQ(f.saw_origin, 0);
	ws_free(c.ws);
	fake_stop(&f);
	/* 403, as ComfyUI answers a foreign Origin */
	fake_start(&f, base, FK_403);
	cl_connect(&c, base, f.port, &o);
	loop_until(base, &c.closes, 2000);
	ASSERT_STREQ(c.reason, "handshake: HTTP 403");
	ws_free(c.ws);
	fake_stop(&f);
	fake_start(&f, base, FK_BADKEY);
	cl_connect(&c, base, f.port, &o);
	loop_until(base, &c.closes, 2000);
	ASSERT_STREQ(c.reason, "handshake: bad Sec-WebSocket-Accept");
	ASSERT_EQ(c.opens, 0);
	ws_free(c.ws);
	fake_stop(&f);
	event_base_free(base);
}

/* Runs one script; returns with the client open or closed. */
static void
script_run(struct event_base *base, struct fake *f, struct cl *c,
    const struct ws_opts *o, int wait_ms)
{
	cl_connect(c, base, f->port, o);
	loop_for(base, wait_ms);
}

static void
test_frames(void)
{
	struct event_base *base = event_base_new();
	struct fake	   f;
	struct cl	   c;
	struct ws_opts	   o = { 1000, 0, 0, 1024 };
	char		   payload[2048], got[256];
	size_t		   n;
	int		   op;

	/* fragments with a ping in between: one message, and a pong */
	fake_start(&f, base, FK_OK);
	frame(f.script, 0, 1, "hel", 3, 0);
	frame(f.script, 1, 9, "pp", 2, 0);
	frame(f.script, 0, 0, "l", 1, 0);
	frame(f.script, 1, 0, "o", 1, 0);
	frame(f.script, 1, 2, "\x00\x01\x02", 3, 0);
	script_run(base, &f, &c, &o, 200);
	ASSERT_EQ(c.opens, 1);
	ASSERT_EQ(c.texts, 1);
	ASSERT_EQ(c.bins, 1);
	ASSERT_EQ((long long)c.lastlen, 3);
	ASSERT_EQ(c.closes, 0);
	ASSERT_EQ(client_frame(&f, &op, got, &n), 0);
	ASSERT_EQ(op, 0xa);
	ASSERT_EQ((long long)n, 2);
	ASSERT_TRUE(memcmp(got, "pp", 2) == 0);
	ws_free(c.ws);
	fake_stop(&f);
	/* the client's text frames are masked */
	fake_start(&f, base, FK_OK);
	script_run(base, &f, &c, &o, 100);
	ASSERT_EQ(ws_send_text(c.ws, "hi there", 8), 0);
	loop_for(base, 100);
	ASSERT_EQ(client_frame(&f, &op, got, &n), 0);
	ASSERT_EQ(op, 1);
	ASSERT_TRUE(n == 8 && memcmp(got, "hi there", 8) == 0);
	ws_free(c.ws);
	fake_stop(&f);
	/* a masked frame from the server is a protocol error */
	fake_start(&f, base, FK_OK);
	frame(f.script, 1, 1, "x", 1, 1);
	script_run(base, &f, &c, &o, 200);
	ASSERT_EQ(c.closes, 1);
	ASSERT_EQ(c.texts, 0);
	ASSERT_STREQ(c.reason, "protocol error (1002)");
	ASSERT_EQ(ws_send_text(c.ws, "x", 1), -1);
	ws_free(c.ws);
	fake_stop(&f);
	/* a reserved opcode */
	fake_start(&f, base, FK_OK);
	frame(f.script, 1, 3, "x", 1, 0);
	script_run(base, &f, &c, &o, 200);
	ASSERT_STREQ(c.reason, "protocol error (1002)");
	ws_free(c.ws);
	fake_stop(&f);
	/* text that is not UTF-8 */
	fake_start(&f, base, FK_OK);
	frame(f.script, 1, 1, "\xff\xfe", 2, 0);
	script_run(base, &f, &c, &o, 200);
	ASSERT_EQ(c.texts, 0);
	ASSERT_EQ(c.closes, 1);
	ASSERT_TRUE(strncmp(c.reason, "protocol error", 14) == 0);
	ws_free(c.ws);
	fake_stop(&f);
	/* larger than max_msg_bytes */
	fake_start(&f, base, FK_OK);
	memset(payload, 'a', sizeof payload);
	frame(f.script, 1, 1, payload, 2000, 0);
	script_run(base, &f, &c, &o, 200);
	ASSERT_EQ(c.texts, 0);
	ASSERT_STREQ(c.reason, "message too big");
	ws_free(c.ws);
	fake_stop(&f);
	/* a close frame: on_close, and the client's close answers it */
	fake_start(&f, base, FK_OK);
	frame(f.script, 1, 1, "last", 4, 0);
	frame(f.script, 1, 8,
	    "\x03\xe8"
	    "bye",
	    5, 0);
	script_run(base, &f, &c, &o, 200);
	ASSERT_EQ(c.texts, 1);
	ASSERT_EQ(c.closes, 1);
	ASSERT_STREQ(c.reason, "closed by peer (1000)");
	ASSERT_EQ(client_frame(&f, &op, got, &n), 0);
	ASSERT_EQ(op, 8);
	ws_free(c.ws);
	fake_stop(&f);
	event_base_free(base);
}

static void
test_pong_timeout(void)
{
	struct event_base *base = event_base_new();
	struct fake	   f;
	struct cl	   c;
	struct ws_opts	   o = { 1000, 50, 100, 0 };
	long long	   t0;

	fake_start(&f, base, FK_OK);
	t0 = clock_mono_ms();
	cl_connect(&c, base, f.port, &o);
	loop_until(base, &c.closes, 3000);
	ASSERT_STREQ(c.reason, "pong timeout");
	ASSERT_EQ(c.opens, 1);
	ASSERT_TRUE(clock_mono_ms() - t0 >= 140);
	ws_free(c.ws);
	fake_stop(&f);
	event_base_free(base);
}

/* ws_free from inside callbacks: nothing more is called, nothing leaks. */
static void
test_free_in_callbacks(void)
{
	struct event_base *base = event_base_new();
	struct fake	   f;
	struct cl	   c;
	struct ws_opts	   o = { 1000, 0, 0, 0 };

	fake_start(&f, base, FK_OK);
	frame(f.script, 1, 1, "one", 3, 0);
	frame(f.script, 1, 1, "two", 3, 0);
	frame(f.script, 1, 8, "\x03\xe8", 2, 0);
	cl_connect(&c, base, f.port, &o);
	c.free_in_text = 1;
	loop_for(base, 200);
	ASSERT_EQ(c.texts, 1);
	ASSERT_EQ(c.closes, 0);
	ASSERT_TRUE(c.ws == NULL);
	fake_stop(&f);
	fake_start(&f, base, FK_403);
	cl_connect(&c, base, f.port, &o);
	c.free_in_close = 1;
	loop_for(base, 200);
	ASSERT_EQ(c.closes, 1);
	ASSERT_TRUE(c.ws == NULL);
	fake_stop(&f);
	/* freed before the connect finished: no callback at all */
	fake_start(&f, base, FK_OK);
	cl_connect(&c, base, f.port, &o);
	ws_free(c.ws);
	loop_for(base, 100);
	ASSERT_EQ(c.opens + c.closes, 0);
	fake_stop(&f);
	event_base_free(base);
}

/* A raw socket to the sim's /ws: upgrade by hand, then send garbage. The
 * sim must answer with a close frame carrying code and close the socket,
 * and go on serving. Returns the close code (0: none seen). */
static int
sim_garbage(struct simproc *s, const void *junk, size_t len)
{
	struct sockaddr_in sin;
	struct timeval	   tv = { 3, 0 };
	unsigned char	   buf[65536];
	size_t		   have = 0, off, n, hl;
	ssize_t		   r;
	char		  *end;
	int		   fd, code = 0, eof = 0;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)s->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	ASSERT_EQ(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	dprintf(fd,
	    "GET /ws?clientId=raw HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n");
	while ((r = read(fd, buf + have, sizeof buf - have - 1)) > 0) {
		have += (size_t)r;
		buf[have] = '\0';
		if (strstr((char *)buf, "\r\n\r\n") != NULL)
			break;
	}
	ASSERT_TRUE(strncmp((char *)buf, "HTTP/1.1 101 ", 13) == 0);
	ASSERT_TRUE(strstr((char *)buf,
			"Sec-WebSocket-Accept: "
			"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != NULL);
	end = strstr((char *)buf, "\r\n\r\n") + 4;
	have -= (size_t)(end - (char *)buf);
	memmove(buf, end, have);
	/* the sim may close before it has read it all */
	for (off = 0; off < len; off += (size_t)r)
		if ((r = send(fd, (const char *)junk + off, len - off,
			 MSG_NOSIGNAL)) <= 0)
			break;
	while (!eof && have < sizeof buf) {
		if ((r = read(fd, buf + have, sizeof buf - have)) <= 0)
			eof = r == 0 || errno == ECONNRESET;
		if (r <= 0)
			break;
		have += (size_t)r;
	}
	ASSERT_TRUE(eof);
	/* server frames: the hello status, then the close */
	for (off = 0; off + 2 <= have; off += hl + n) {
		n = buf[off + 1] & 0x7f;
		hl = 2;
		if (n == 126) {
			n = (size_t)buf[off + 2] << 8 | buf[off + 3];
			hl = 4;
		}
		ASSERT_TRUE(!(buf[off + 1] & 0x80)); /* never masked */
		if ((buf[off] & 0x0f) == 8 && n >= 2)
			code = buf[off + hl] << 8 | buf[off + hl + 1];
	}
	close(fd);
	return (code);
}

static void
test_sim_rejects_garbage(void)
{
	struct simproc	s;
	struct http_res r;
	unsigned char	junk[64], *big;
	size_t		i;

	sim_start(&s, NULL);
	/* an unmasked client frame */
	ASSERT_EQ(sim_garbage(&s, "\x81\x02hi", 4), 1002);
	for (i = 0; i < sizeof junk; i++)
		junk[i] = (unsigned char)(i * 73 + 5);
	junk[0] = 0x8f; /* reserved opcode, masked */
	junk[1] = 0x85;
	ASSERT_EQ(sim_garbage(&s, junk, sizeof junk), 1002);
	/* a masked text frame of 5 MiB: over aiohttp's 4 MiB */
	big = xcalloc(1, (5u << 20) + 14);
	big[0] = 0x81;
	big[1] = 0x80 | 127;
	big[7] = 0x50; /* 0x500000 */
	ASSERT_EQ(sim_garbage(&s, big, (5u << 20) + 14), 1009);
	free(big);
	ASSERT_EQ(ht_get(&s, "/prompt", &r), 200);
	ht_free(&r);
	sim_stop(&s);
}

const struct unit_test itests[] = {
	{ "bad_urls", test_bad_urls },
	{ "against_sim", test_against_sim },
	{ "resolver", test_resolver },
	{ "connect_failures", test_connect_failures },
	{ "frames", test_frames },
	{ "pong_timeout", test_pong_timeout },
	{ "free_in_callbacks", test_free_in_callbacks },
	{ "sim_rejects_garbage", test_sim_rejects_garbage },
	{ NULL, NULL },
};
