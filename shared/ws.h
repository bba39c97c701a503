/*
 * WebSocket client (RFC 6455) on libevent and wslay, for ComfyUI's /ws.
 * (Interface only; the implementation comes with the simulator's branch.)
 */
#ifndef COMFYQ_WS_H
#define COMFYQ_WS_H

#include <stddef.h>

struct event_base;
struct ws;

struct ws_opts {
	long long connect_timeout_ms;
	long long ping_interval_ms;
	long long pong_timeout_ms;
	size_t	  max_msg_bytes;
};

struct ws_cb {
	void (*on_open)(struct ws *, void *);
	void (*on_text)(struct ws *, const char *, size_t, void *);
	void (*on_binary)(struct ws *, const unsigned char *, size_t, void *);
	void (*on_close)(struct ws *, const char *, void *);
};

struct ws *ws_connect(struct event_base *, const char *, const struct ws_opts *,
    const struct ws_cb *, void *, char *, size_t);
int	   ws_send_text(struct ws *, const char *, size_t);
int	   ws_send_ping(struct ws *);
void	   ws_free(struct ws *);

#endif
