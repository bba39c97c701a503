/*
 * A link of the TLS bridge (see tls_bridge.c): its two sides, on the
 * bridge thread.
 *
 * The local side is a plain bufferevent on the caller's socket. The
 * remote side first connects over TCP, trying the target's addresses in
 * turn (so a refused address says "connect: Connection refused", not a
 * TLS error), then becomes a bufferevent_openssl that shakes hands, with
 * the name checked by OpenSSL (SSL_set1_host, or the IP address) against
 * the certificate it verifies; both within timeout_ms. Bytes cross as
 * they come; when TLS_BRIDGE_HIGH bytes wait toward one side, the other
 * stops reading until they are written. When one side ends, the reason
 * is recorded first, then the other side's pending bytes are flushed and
 * it is closed: a client reads the server's last replies, then EOF, and
 * finds why in tls_bridge_why. The client's socket is only half closed
 * then, and freed once the client closes it (tls_link_half_close).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "tls_bridge_int.h"
#include "util.h"

static void tls_link_end(struct tls_bridge_link *, int local_ended);
static void tls_link_undial(struct tls_bridge_link *);
static void tls_link_remote_event(struct bufferevent *, short, void *);

/* Both sides gone: the bridge lets go of the link. */
static void
tls_link_maybe_done(struct tls_bridge_link *l)
{
	if (l->local != NULL || l->remote != NULL)
		return;
	if (l->timer != NULL)
		event_free(l->timer);
	SSL_CTX_free(l->ctx);
	tls_bridge_done(l);
}

static void
tls_link_free_local(struct tls_bridge_link *l)
{
	bufferevent_free(l->local); /* closes the caller's socket */
	l->local = NULL;
	tls_link_maybe_done(l);
}

static void
tls_link_free_remote(struct tls_bridge_link *l)
{
	if (l->up) /* close_notify, if the socket takes it now */
		SSL_shutdown(bufferevent_openssl_get_ssl(l->remote));
	ERR_clear_error();
	bufferevent_free(l->remote); /* frees the SSL, closes the socket */
	l->remote = NULL;
	tls_link_maybe_done(l);
}

/*
 * The client's side, once the server's last bytes are written to it: only
 * half closed (the client reads EOF), and freed when the client closes its
 * end. What the client writes meanwhile is dropped: a write to a closed
 * socket would raise SIGPIPE in a client that does not ignore it (the CLI,
 * whose stdout should still die of it).
 */
static void
tls_link_half_close(struct tls_bridge_link *l)
{
	l->local_closing = 0;
	l->local_half = 1;
	bufferevent_disable(l->local, EV_WRITE);
	shutdown(bufferevent_getfd(l->local), SHUT_WR);
	bufferevent_enable(l->local, EV_READ);
}

/*
 * Closes a side once what it still has to write is written: the server's
 * side is freed then, the client's half closed.
 */
static void
tls_link_flush_close(struct tls_bridge_link *l, int local)
{
	struct bufferevent *bev = local ? l->local : l->remote;
	int		    empty;

	empty = evbuffer_get_length(bufferevent_get_output(bev)) == 0;
	if (local && empty)
		tls_link_half_close(l);
	else if (local) {
		l->local_closing = 1;
		bufferevent_enable(bev, EV_READ | EV_WRITE);
	} else if (empty || !l->up)
		tls_link_free_remote(l);
	else {
		l->remote_closing = 1;
		bufferevent_disable(bev, EV_READ);
		bufferevent_enable(bev, EV_WRITE);
	}
}

/*
 * One side ended: it goes at once; the other flushes, then goes. Whichever
 * side is freed last frees the link, so nothing reads l after that.
 */
static void
tls_link_end(struct tls_bridge_link *l, int local_ended)
{
	int gone, other;

	if (l->timer != NULL)
		evtimer_del(l->timer);
	tls_link_undial(l);
	tls_bridge_set_state(l, TB_ENDED);
	l->ended = 1;
	gone = (local_ended ? l->local : l->remote) != NULL;
	other = local_ended
	    ? l->remote != NULL && !l->remote_closing
	    : l->local != NULL && !l->local_closing && !l->local_half;
	if (other)
		tls_link_flush_close(l, !local_ended);
	if (gone && local_ended)
		tls_link_free_local(l);
	else if (gone)
		tls_link_free_remote(l);
}

/*
 * Moves what one side read into the other's output (see the top). Until
 * the remote side exists (the TCP connect is under way) the client's
 * bytes wait in its input, with reading off; tls_link_handshake moves
 * them.
 */
static void
tls_link_pump(struct tls_bridge_link *l, struct bufferevent *from,
    struct bufferevent *to, int closing)
{
	struct evbuffer *in = bufferevent_get_input(from), *out;

	if (to == NULL && !l->ended) {
		bufferevent_disable(from, EV_READ);
		return;
	}
	if (to == NULL || closing) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	out = bufferevent_get_output(to);
	evbuffer_add_buffer(out, in);
	if (evbuffer_get_length(out) >= TLS_BRIDGE_HIGH)
		bufferevent_disable(from, EV_READ);
}

static void
tls_link_local_read(struct bufferevent *bev, void *arg)
{
	struct tls_bridge_link *l = arg;

	tls_link_pump(l, bev, l->remote, l->remote_closing);
}

static void
tls_link_remote_read(struct bufferevent *bev, void *arg)
{
	struct tls_bridge_link *l = arg;

	tls_link_pump(l, bev, l->local, l->local_closing);
}

/* A side's output is empty: close it if it was closing, else resume. */
static void
tls_link_local_write(struct bufferevent *bev, void *arg)
{
	struct tls_bridge_link *l = arg;

	(void)bev;
	if (l->local_closing)
		tls_link_half_close(l);
	else if (l->remote != NULL && !l->remote_closing)
		bufferevent_enable(l->remote, EV_READ);
}

static void
tls_link_remote_write(struct bufferevent *bev, void *arg)
{
	struct tls_bridge_link *l = arg;

	(void)bev;
	if (l->remote_closing)
		tls_link_free_remote(l);
	else if (l->local != NULL && !l->local_closing)
		bufferevent_enable(l->local, EV_READ);
}

/* The client closed its end (or it failed): no reason to record. */
static void
tls_link_local_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	tls_link_end(arg, 1);
}

/*
 * Why the TLS side failed, in words: a certificate that did not verify
 * (with the name wanted when it was the name), OpenSSL's reason (an alert
 * from the server, a protocol error), EOF, or the socket's error.
 */
static void
tls_link_reason(
    struct tls_bridge_link *l, short what, int sockerr, char *buf, size_t len)
{
	SSL	     *ssl = bufferevent_openssl_get_ssl(l->remote);
	unsigned long e, first = 0, verify = 0;
	const char   *r;
	long	      v;

	/*
	 * libevent hands its saved errors back newest first, among them
	 * SSL_get_error()'s codes (library 0: SSL_ERROR_SYSCALL is the
	 * socket's error, told apart below).
	 */
	while ((e = bufferevent_get_openssl_error(l->remote)) != 0) {
		if (ERR_GET_LIB(e) == 0)
			continue;
		first = e;
		if (ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED)
			verify = e;
	}
	ERR_clear_error();
	if (verify != 0 && (v = SSL_get_verify_result(ssl)) != X509_V_OK) {
		int name = v == X509_V_ERR_HOSTNAME_MISMATCH ||
		    v == X509_V_ERR_IP_ADDRESS_MISMATCH;

		snprintf(buf, len, "TLS: certificate verify failed: %s%s%s%s",
		    X509_verify_cert_error_string(v),
		    name ? " (the certificate is not for " : "",
		    name ? l->name : "", name ? ")" : "");
		return;
	}
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
	if (ERR_GET_REASON(first) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		first = 0; /* no close_notify: a server that exited */
		what |= BEV_EVENT_EOF;
	}
#endif
	if (first != 0) {
		r = ERR_reason_error_string(first);
		snprintf(
		    buf, len, "TLS: %s", r != NULL ? r : "handshake failed");
		return;
	}
	if (what & BEV_EVENT_EOF)
		snprintf(buf, len, "TLS: the server closed the connection%s",
		    l->up ? "" : " during the handshake");
	else if (sockerr != 0)
		snprintf(buf, len, "TLS: %s", strerror(sockerr));
	else
		snprintf(buf, len, "TLS: the connection failed");
}

/* A new SSL for the link: SNI and, verifying, the name to check. */
static SSL *
tls_link_ssl(struct tls_bridge_link *l)
{
	unsigned char addr[16];
	int	      ip, ok = 1;
	SSL	     *ssl;

	if ((ssl = SSL_new(l->ctx)) == NULL)
		fatalx("tls: SSL_new failed");
	ip = inet_pton(AF_INET, l->name, addr) == 1 ||
	    inet_pton(AF_INET6, l->name, addr) == 1;
	if (l->name[0] != '\0' && !ip) /* RFC 6066: no SNI for addresses */
		ok = SSL_set_tlsext_host_name(ssl, l->name) == 1;
	if (ok && l->verify && l->name[0] != '\0') {
		if (ip)
			ok = X509_VERIFY_PARAM_set1_ip_asc(
				 SSL_get0_param(ssl), l->name) == 1;
		else {
			SSL_set_hostflags(
			    ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			ok = SSL_set1_host(ssl, l->name) == 1;
		}
	}
	if (!ok) {
		ERR_clear_error();
		SSL_free(ssl);
		return (NULL);
	}
	return (ssl);
}

/* The TCP connection is up: TLS over it. */
static void
tls_link_handshake(struct tls_bridge_link *l, int fd)
{
	SSL *ssl;

	if ((ssl = tls_link_ssl(l)) == NULL) {
		close(fd);
		tls_bridge_set_why(l, "TLS: bad server name '%s'", l->name);
		tls_link_end(l, 0);
		return;
	}
	l->remote = bufferevent_openssl_socket_new(l->base, fd, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (l->remote == NULL)
		fatalx("tls: bufferevent_openssl_socket_new failed");
	/* A server that exits sends no close_notify: that is EOF too. */
	bufferevent_openssl_set_allow_dirty_shutdown(l->remote, 1);
	bufferevent_setcb(l->remote, tls_link_remote_read,
	    tls_link_remote_write, tls_link_remote_event, l);
	bufferevent_enable(l->remote, EV_READ | EV_WRITE);
	bufferevent_enable(l->local, EV_READ);
	if (evbuffer_get_length(bufferevent_get_input(l->local)) > 0)
		tls_link_pump(l, l->local, l->remote, 0);
}

/* Stops a TCP connect in progress. */
static void
tls_link_undial(struct tls_bridge_link *l)
{
	if (l->dial_ev == NULL)
		return;
	event_free(l->dial_ev);
	l->dial_ev = NULL;
	close(l->sock);
	l->sock = -1;
}

static void tls_link_on_dialed(evutil_socket_t, short, void *);

/*
 * Starts a TCP connect to the next address. Returns 0, or -1 with why set
 * when no address is left.
 */
static int
tls_link_dial(struct tls_bridge_link *l, char *why, size_t len)
{
	int fd, i, one = 1;

	while (l->next < l->naddr) {
		i = l->next++;
		fd = socket(l->addr[i].ss_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd == -1) {
			snprintf(why, len, "socket: %s", strerror(errno));
			continue;
		}
		/* As hiredis does: a command is not held back for an ACK. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (connect(fd, (struct sockaddr *)&l->addr[i],
			l->addrlen[i]) == 0 ||
		    errno == EINPROGRESS) {
			l->sock = fd;
			l->dial_ev = event_new(
			    l->base, fd, EV_WRITE, tls_link_on_dialed, l);
			event_add(l->dial_ev, NULL);
			return (0);
		}
		snprintf(why, len, "connect: %s", strerror(errno));
		close(fd);
	}
	return (-1);
}

/* Dials; ends the link with why when no address is left. */
static void
tls_link_dial_or_end(struct tls_bridge_link *l, char *why, size_t len)
{
	if (tls_link_dial(l, why, len) == 0)
		return;
	tls_bridge_set_why(l, "%s", why);
	tls_link_end(l, 0);
}

/* The TCP connect ended: TLS, or the next address. */
static void
tls_link_on_dialed(evutil_socket_t fd, short ev, void *arg)
{
	struct tls_bridge_link *l = arg;
	char			why[TLS_BRIDGE_WHY];
	socklen_t		n = sizeof(int);
	int			e = 0;

	(void)ev;
	event_free(l->dial_ev);
	l->dial_ev = NULL;
	l->sock = -1;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &n) == -1)
		e = errno;
	if (e == 0) {
		tls_link_handshake(l, fd);
		return;
	}
	close(fd);
	snprintf(why, sizeof why, "connect: %s", strerror(e));
	tls_link_dial_or_end(l, why, sizeof why);
}

static void
tls_link_remote_event(struct bufferevent *bev, short what, void *arg)
{
	struct tls_bridge_link *l = arg;
	char			why[TLS_BRIDGE_WHY];
	int			sockerr = EVUTIL_SOCKET_ERROR();

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) { /* the handshake is done */
		l->up = 1;
		evtimer_del(l->timer);
		tls_bridge_set_state(l, TB_UP);
		return;
	}
	tls_link_reason(l, what, sockerr, why, sizeof why);
	tls_bridge_set_why(l, "%s", why);
	tls_link_end(l, 0);
}

static void
tls_link_on_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct tls_bridge_link *l = arg;

	(void)fd;
	(void)ev;
	tls_bridge_set_why(l,
	    "TLS: no session within %d ms (connect and handshake)",
	    l->timeout_ms);
	tls_link_end(l, 0);
}

void
tls_link_start(struct tls_bridge_link *l, struct event_base *base)
{
	char why[TLS_BRIDGE_WHY];

	l->base = base;
	evutil_make_socket_nonblocking(l->fd);
	l->local =
	    bufferevent_socket_new(l->base, l->fd, BEV_OPT_CLOSE_ON_FREE);
	if (l->local == NULL)
		fatalx("tls: bufferevent_socket_new failed");
	l->fd = -1;
	bufferevent_setcb(l->local, tls_link_local_read, tls_link_local_write,
	    tls_link_local_event, l);
	bufferevent_enable(l->local, EV_READ | EV_WRITE);
	l->timer = evtimer_new(l->base, tls_link_on_timeout, l);
	timer_add_ms(l->timer, l->timeout_ms);
	snprintf(why, sizeof why, "connect: no address");
	tls_link_dial_or_end(l, why, sizeof why);
}

/* Ends a link at once (the bridge stops): nothing is flushed. */
void
tls_link_kill(struct tls_bridge_link *l)
{
	tls_bridge_set_why(l, "TLS: the bridge stopped");
	tls_bridge_set_state(l, TB_ENDED);
	tls_link_undial(l);
	l->ended = 1;
	l->local_closing = l->remote_closing = 1;
	if (l->local != NULL) {
		bufferevent_free(l->local);
		l->local = NULL;
	}
	if (l->remote != NULL)
		tls_link_free_remote(l);
	else
		tls_link_maybe_done(l);
}
