/*
 * The TLS bridge's own header: a link's fields, shared by the thread and
 * queue (tls_bridge.c) and the link's two sides (tls_link.c). Everything
 * here runs on the bridge thread but the fields under the mutex.
 */
#ifndef COMFYQ_TLS_BRIDGE_INT_H
#define COMFYQ_TLS_BRIDGE_INT_H

#include <sys/queue.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "tls_bridge.h"

struct bufferevent;
struct event;
struct event_base;

#define TLS_BRIDGE_HIGH	 (1 << 20) /* bytes queued before the other side waits */
#define TLS_BRIDGE_ADDRS 8
#define TLS_BRIDGE_WHY	 320

enum tls_bridge_state { TB_CONNECTING, TB_UP, TB_ENDED };

struct tls_bridge_link {
	/* Under the bridge's mutex (tls_bridge.c). */
	int		      refs;
	enum tls_bridge_state state;
	char		      why[TLS_BRIDGE_WHY];

	/* The bridge thread's (set by the opener before it is queued). */
	TAILQ_ENTRY(tls_bridge_link) entry;
	struct event_base      *base;
	int			fd; /* until the local bufferevent takes it */
	SSL_CTX		       *ctx;
	struct bufferevent     *local, *remote;
	struct event	       *dial_ev; /* a TCP connect in progress on sock */
	int			sock;
	struct event	       *timer;
	struct sockaddr_storage addr[TLS_BRIDGE_ADDRS];
	socklen_t		addrlen[TLS_BRIDGE_ADDRS];
	int			naddr, next;
	char			name[256];
	int			verify;
	int			timeout_ms;
	int			up;
	int			ended;
	int			local_closing, remote_closing;
	int local_half; /* EOF sent; waits for the client's */
};

/* tls_bridge.c, for the link code. */
void tls_bridge_set_why(struct tls_bridge_link *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void tls_bridge_set_state(struct tls_bridge_link *l, enum tls_bridge_state to);
void tls_bridge_done(struct tls_bridge_link *l);

/* tls_link.c, for the thread. */
void tls_link_start(struct tls_bridge_link *l, struct event_base *base);
void tls_link_kill(struct tls_bridge_link *l);

#endif
