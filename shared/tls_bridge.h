/*
 * A TLS bridge: bytes written to a local stream socket leave for a remote
 * server over TLS, and its answers come back on the same socket, so a
 * client library without TLS (hiredis 0.14) speaks through it unchanged.
 * One thread per process, with an event_base of its own, serves every
 * link (docs/design.md §2: Redis over TLS). A caller hands over its end
 * of a socket and a target, may wait until the handshake ended, reads why
 * a link ended, and releases its handle; the bridge closes the socket
 * when either side ends, so the client sees a dropped connection.
 */
#ifndef COMFYQ_TLS_BRIDGE_H
#define COMFYQ_TLS_BRIDGE_H

#include <stddef.h>

struct addrinfo;
struct ssl_ctx_st;

struct tls_bridge_target {
	struct ssl_ctx_st     *ctx;  /* verification and client certificate */
	const char	      *host; /* for messages */
	const char	      *name; /* SNI and the name checked; "" for none */
	int		       verify;	   /* check the certificate's name */
	const struct addrinfo *ai;	   /* addresses, tried in order */
	int		       timeout_ms; /* TCP connect and handshake */
};

struct tls_bridge_link;

struct tls_bridge_link *tls_bridge_open(
    int fd, const struct tls_bridge_target *t, char *err, size_t errlen);
int  tls_bridge_wait(struct tls_bridge_link *l, char *err, size_t errlen);
int  tls_bridge_why(struct tls_bridge_link *l, char *buf, size_t len);
void tls_bridge_release(struct tls_bridge_link *l);
int  tls_bridge_links(void);
void tls_bridge_stop(void);

#endif
