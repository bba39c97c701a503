/*
 * libFuzzer target: ComfyUI's WebSocket as the worker reads it. The bytes
 * are what the server sends on a link shared/ws.c opened (over a
 * socketpair, ws_connect_fd): the 101 reply and then frames, through the
 * handshake check (ws_handshake.c), wslay's frame parser driven by ws.c
 * (fragments, control frames, masks, lengths, close, the message size
 * limit), and every text message through comfy_event_parse()
 * (worker/comfy.c), the function that turns a frame into the worker's
 * (type, data) event. The first byte picks the mode: bit 0 clear, a valid
 * 101 head (with the right Sec-WebSocket-Accept) comes first and the rest
 * is frames; bit 0 set, the rest is the whole reply, head included; bit 1,
 * a 256-byte message limit; bit 2, the rest also goes to
 * comfy_event_parse() and ws_url_parse() directly. Every link must end in
 * exactly one on_close, and no callback may come after it.
 */
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "comfy.h"
#include "log.h"
#include "ws.h"
#include "ws_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct fuzz_link {
	int opened, closed, texts, events;
};

static void
fuzz_event(void *arg, const char *type, const cJSON *data)
{
	struct fuzz_link *l = arg;
	const cJSON	 *pid;

	if (type == NULL || (data != NULL && !cJSON_IsObject(data)))
		abort();
	/* What worker_comfy_event() reads first. */
	pid = cJSON_GetObjectItemCaseSensitive(data, "prompt_id");
	(void)cJSON_IsString(pid);
	l->events++;
}

static void
fuzz_open(struct ws *ws, void *arg)
{
	struct fuzz_link *l = arg;

	(void)ws;
	if (l->closed || l->opened)
		abort();
	l->opened = 1;
}

static void
fuzz_text(struct ws *ws, const char *text, size_t len, void *arg)
{
	struct fuzz_link *l = arg;

	(void)ws;
	if (l->closed || !l->opened)
		abort();
	l->texts++;
	(void)comfy_event_parse(text, len, fuzz_event, l);
}

static void
fuzz_binary(struct ws *ws, const unsigned char *p, size_t len, void *arg)
{
	struct fuzz_link *l = arg;

	(void)ws;
	(void)p;
	(void)len;
	if (l->closed || !l->opened)
		abort();
}

static void
fuzz_close(struct ws *ws, const char *reason, void *arg)
{
	struct fuzz_link *l = arg;

	(void)ws;
	if (l->closed || reason == NULL)
		abort();
	l->closed = 1;
}

static const struct ws_cb fuzz_cbs = { fuzz_open, fuzz_text, fuzz_binary,
	fuzz_close };

/* Reads what the client wrote; returns the bytes kept in buf. */
static size_t
fuzz_drain(int fd, char *buf, size_t cap, size_t have)
{
	char	junk[4096];
	ssize_t n;

	for (;;) {
		if (have + 1 < cap)
			n = read(fd, buf + have, cap - have - 1);
		else
			n = read(fd, junk, sizeof junk);
		if (n <= 0)
			break;
		if (have + 1 < cap)
			have += (size_t)n;
	}
	buf[have] = '\0';
	return (have);
}

/* The 101 head for the key of the request in req. */
static int
fuzz_head(const char *req, char *out, size_t outlen)
{
	const char *k = strstr(req, "Sec-WebSocket-Key: ");
	char	    key[64], accept[WS_ACCEPT_LEN];
	size_t	    n;

	if (k == NULL)
		return (-1);
	k += strlen("Sec-WebSocket-Key: ");
	n = strcspn(k, "\r");
	if (n >= sizeof key)
		return (-1);
	memcpy(key, k, n);
	key[n] = '\0';
	if (ws_accept_key(key, accept) == -1)
		return (-1);
	snprintf(out, outlen,
	    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
	    accept);
	return (0);
}

static void
fuzz_write_all(int fd, const void *p, size_t len, struct event_base *base,
    int peer, char *buf, size_t cap)
{
	const char *c = p;
	ssize_t	    n;

	while (len > 0) {
		n = send(fd, c, len, MSG_NOSIGNAL);
		if (n > 0) {
			c += n;
			len -= (size_t)n;
			continue;
		}
		if (n == -1 && errno != EAGAIN && errno != EINTR)
			return; /* the client closed: the rest is moot */
		event_base_loop(base, EVLOOP_NONBLOCK);
		(void)fuzz_drain(peer, buf, cap, 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct event_base *base;
	struct ws_opts		  o = { .connect_timeout_ms = 60000 };
	struct fuzz_link	  l = { 0, 0, 0, 0 };
	struct ws_url		  u;
	struct ws		 *ws;
	char			  req[8192], head[256], err[256], *text;
	size_t			  have = 0;
	int			  sv[2], i;

	req[0] = '\0';

	if (base == NULL) {
		log_init("fuzz_comfyws", LL_WARNING, 0);
		if ((base = event_base_new()) == NULL)
			abort();
	}
	if (len < 1)
		return (0);
	if (data[0] & 0x4) {
		struct fuzz_link d = { 1, 0, 0, 0 };

		(void)comfy_event_parse(
		    (const char *)data + 1, len - 1, fuzz_event, &d);
		if ((text = malloc(len)) == NULL)
			abort();
		memcpy(text, data + 1, len - 1);
		text[len - 1] = '\0';
		if (ws_url_parse(text, &u, err, sizeof err) == 0)
			ws_url_free(&u);
		free(text);
	}
	if (data[0] & 0x2)
		o.max_msg_bytes = 256;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	if (fcntl(sv[1], F_SETFL, O_NONBLOCK) == -1)
		abort();
	ws = ws_connect_fd(base, sv[0], "ws://127.0.0.1:8188/ws?clientId=fuzz",
	    &o, &fuzz_cbs, &l, err, sizeof err);
	if (ws == NULL)
		abort();
	/* The upgrade request, as the server reads it. */
	for (i = 0; i < 100 && strstr(req, "\r\n\r\n") == NULL; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		have = fuzz_drain(sv[1], req, sizeof req, have);
	}
	if (!(data[0] & 0x1)) {
		if (fuzz_head(req, head, sizeof head) == -1)
			abort(); /* ws.c sent no key */
		fuzz_write_all(sv[1], head, strlen(head), base, sv[1], req,
		    sizeof req);
	}
	fuzz_write_all(
	    sv[1], data + 1, len - 1, base, sv[1], req, sizeof req);
	shutdown(sv[1], SHUT_WR);
	for (i = 0; i < 10000 && !l.closed; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		(void)fuzz_drain(sv[1], req, sizeof req, 0);
	}
	if (!l.closed)
		abort(); /* EOF must end the link */
	if (getenv("FUZZ_COMFYWS_PRINT") != NULL)
		fprintf(stderr, "fuzz_comfyws: open %d, %d texts, %d events\n",
		    l.opened, l.texts, l.events);
	ws_free(ws);
	close(sv[1]);
	/* A freed ws leaves nothing on the loop. */
	event_base_loop(base, EVLOOP_NONBLOCK);
	return (0);
}
