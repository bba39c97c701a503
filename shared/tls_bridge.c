/*
 * The TLS bridge (see tls_bridge.h).
 *
 * Threads. The bridge thread owns its event_base, every bufferevent and
 * every SSL object; callers never touch them, so libevent needs no locks.
 * A caller queues a new link under tb.mu and writes a byte into a pipe the
 * thread watches; the thread takes the queue from there. What both sides
 * read (a link's state, the reason it ended, its references) is under
 * tb.mu, and tb.cond tells waiters of a change. The thread blocks every
 * signal: they stay the main thread's, and a write to a closed socket
 * gives EPIPE, not SIGPIPE.
 *
 * A link's two sides (the TCP connect, the handshake, the bytes both
 * ways, how it ends) are tls_link.c's; this file holds the thread, the
 * queue and what callers call.
 *
 * Lifetime. A link has two references, the caller's and the bridge's; the
 * last release frees it. tls_bridge_stop ends every link and joins the
 * thread (rq_tls.c calls it at exit). A child after fork() has no bridge
 * thread: it starts one of its own on first use.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "log.h"
#include "tls_bridge_int.h"
#include "xmalloc.h"

TAILQ_HEAD(tls_bridge_list, tls_bridge_link);

static struct {
	pthread_mutex_t	       mu;
	pthread_cond_t	       cond;
	int		       running;
	int		       stop;
	pid_t		       pid;
	pthread_t	       thread;
	struct event_base     *base;
	struct event	      *wake;
	int		       pipe[2];
	struct tls_bridge_list queue; /* opened, not yet taken by the thread */
	struct tls_bridge_list links; /* the thread's */
	int nlinks; /* opened and not yet freed by the bridge */
} tb = { .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* Records why the link ended; the first reason stays. */
void
tls_bridge_set_why(struct tls_bridge_link *l, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&tb.mu);
	if (l->why[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(l->why, sizeof l->why, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&tb.mu);
}

void
tls_bridge_set_state(struct tls_bridge_link *l, enum tls_bridge_state to)
{
	pthread_mutex_lock(&tb.mu);
	if (l->state != TB_ENDED)
		l->state = to;
	pthread_cond_broadcast(&tb.cond);
	pthread_mutex_unlock(&tb.mu);
}

/* Drops one reference; the last frees the link. */
static void
tls_bridge_unref(struct tls_bridge_link *l, int bridge)
{
	int last;

	pthread_mutex_lock(&tb.mu);
	if (bridge)
		tb.nlinks--;
	last = --l->refs == 0;
	pthread_mutex_unlock(&tb.mu);
	if (last)
		free(l);
}

/* The link code is done with l (both sides freed). */
void
tls_bridge_done(struct tls_bridge_link *l)
{
	TAILQ_REMOVE(&tb.links, l, entry);
	tls_bridge_unref(l, 1);
}

/* The pipe: new links to start, or the order to stop. */
static void
tls_bridge_on_wake(evutil_socket_t fd, short ev, void *arg)
{
	struct tls_bridge_list	fresh;
	struct tls_bridge_link *l;
	char			buf[64];
	int			stop;

	(void)ev;
	(void)arg;
	while (read(fd, buf, sizeof buf) > 0)
		;
	TAILQ_INIT(&fresh);
	pthread_mutex_lock(&tb.mu);
	TAILQ_CONCAT(&fresh, &tb.queue, entry);
	stop = tb.stop;
	pthread_mutex_unlock(&tb.mu);
	while ((l = TAILQ_FIRST(&fresh)) != NULL) {
		TAILQ_REMOVE(&fresh, l, entry);
		TAILQ_INSERT_TAIL(&tb.links, l, entry);
		tls_link_start(l, tb.base);
	}
	if (!stop)
		return;
	while ((l = TAILQ_FIRST(&tb.links)) != NULL)
		tls_link_kill(l);
	event_base_loopbreak(tb.base);
}

static void *
tls_bridge_main(void *arg)
{
	(void)arg;
	event_base_dispatch(tb.base);
	return (NULL);
}

static void
tls_bridge_poke(void)
{
	ssize_t n;

	n = write(tb.pipe[1], "x", 1); /* full: a wake-up is pending anyway */
	(void)n;
}

/* Starts the thread unless it runs in this process. Under tb.mu. */
static int
tls_bridge_start_locked(char *err, size_t errlen)
{
	sigset_t all, old;
	int	 rc;

	if (tb.running && tb.pid == getpid())
		return (0);
	/* Never started, or a child after fork(): what it inherited is its
	 * parent's (the thread is not here), so it is left alone. */
	TAILQ_INIT(&tb.queue);
	TAILQ_INIT(&tb.links);
	tb.nlinks = 0;
	tb.stop = 0;
	if (pipe2(tb.pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
		snprintf(err, errlen, "TLS bridge: pipe: %s", strerror(errno));
		return (-1);
	}
	if ((tb.base = event_base_new()) == NULL)
		fatalx("tls: event_base_new failed");
	tb.wake = event_new(tb.base, tb.pipe[0], EV_READ | EV_PERSIST,
	    tls_bridge_on_wake, NULL);
	event_add(tb.wake, NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&tb.thread, NULL, tls_bridge_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "TLS bridge: pthread_create: %s",
		    strerror(rc));
		event_free(tb.wake);
		event_base_free(tb.base);
		close(tb.pipe[0]);
		close(tb.pipe[1]);
		return (-1);
	}
	tb.running = 1;
	tb.pid = getpid();
	return (0);
}

/*
 * Bridges fd, one end of a connected local stream socket, to the target.
 * The bridge owns fd from here (it closes it when the link ends). Returns
 * the caller's handle, or NULL with the reason in err (fd is then still
 * the caller's).
 */
struct tls_bridge_link *
tls_bridge_open(
    int fd, const struct tls_bridge_target *t, char *err, size_t errlen)
{
	struct tls_bridge_link *l;
	const struct addrinfo  *ai;

	l = xcalloc(1, sizeof *l);
	for (ai = t->ai; ai != NULL && l->naddr < TLS_BRIDGE_ADDRS;
	     ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof l->addr[0])
			continue;
		memcpy(&l->addr[l->naddr], ai->ai_addr, ai->ai_addrlen);
		l->addrlen[l->naddr++] = ai->ai_addrlen;
	}
	if (l->naddr == 0) {
		snprintf(err, errlen, "TLS bridge: no address for %s", t->host);
		free(l);
		return (NULL);
	}
	l->refs = 2;
	l->fd = fd;
	l->sock = -1;
	l->ctx = t->ctx;
	SSL_CTX_up_ref(l->ctx);
	snprintf(l->name, sizeof l->name, "%s", t->name ? t->name : "");
	l->verify = t->verify;
	l->timeout_ms = t->timeout_ms > 0 ? t->timeout_ms : 1;
	pthread_mutex_lock(&tb.mu);
	if (tls_bridge_start_locked(err, errlen) == -1) {
		pthread_mutex_unlock(&tb.mu);
		SSL_CTX_free(l->ctx);
		free(l);
		return (NULL);
	}
	TAILQ_INSERT_TAIL(&tb.queue, l, entry);
	tb.nlinks++;
	pthread_mutex_unlock(&tb.mu);
	tls_bridge_poke();
	return (l);
}

/*
 * Waits until the handshake is done (0) or the link ended (-1, the reason
 * in err). The bridge's timer ends a link that is not up within its
 * timeout; the wait itself gives up a second later in case it never
 * hears.
 */
int
tls_bridge_wait(struct tls_bridge_link *l, char *err, size_t errlen)
{
	struct timespec ts;
	int		rc = 0, up;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += l->timeout_ms / 1000 + 1;
	ts.tv_nsec += (long)(l->timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&tb.mu);
	while (l->state == TB_CONNECTING && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&tb.cond, &tb.mu, &ts);
	up = l->state == TB_UP;
	if (!up)
		snprintf(err, errlen, "%s",
		    l->why[0] != '\0' ? l->why
				      : "TLS: the bridge did not answer");
	pthread_mutex_unlock(&tb.mu);
	return (up ? 0 : -1);
}

/* Copies why the link ended into buf: 1, or 0 when it has not ended. */
int
tls_bridge_why(struct tls_bridge_link *l, char *buf, size_t len)
{
	int n;

	pthread_mutex_lock(&tb.mu);
	if ((n = l->why[0] != '\0'))
		snprintf(buf, len, "%s", l->why);
	pthread_mutex_unlock(&tb.mu);
	return (n);
}

/* The caller lets go of its handle (the link may live on). */
void
tls_bridge_release(struct tls_bridge_link *l)
{
	if (l != NULL)
		tls_bridge_unref(l, 0);
}

/* How many links the bridge still holds (tests check that none leak). */
int
tls_bridge_links(void)
{
	int n;

	pthread_mutex_lock(&tb.mu);
	n = tb.running && tb.pid == getpid() ? tb.nlinks : 0;
	pthread_mutex_unlock(&tb.mu);
	return (n);
}

/* Ends every link and joins the thread; a later open starts it again. */
void
tls_bridge_stop(void)
{
	struct tls_bridge_link *l;

	pthread_mutex_lock(&tb.mu);
	if (!tb.running || tb.pid != getpid() ||
	    pthread_equal(pthread_self(), tb.thread)) {
		pthread_mutex_unlock(&tb.mu);
		return;
	}
	tb.stop = 1;
	pthread_mutex_unlock(&tb.mu);
	tls_bridge_poke();
	pthread_join(tb.thread, NULL);
	event_free(tb.wake);
	event_base_free(tb.base);
	close(tb.pipe[0]);
	close(tb.pipe[1]);
	pthread_mutex_lock(&tb.mu);
	/* Opened after the thread took its last look: never started. */
	while ((l = TAILQ_FIRST(&tb.queue)) != NULL) {
		TAILQ_REMOVE(&tb.queue, l, entry);
		close(l->fd);
		snprintf(l->why, sizeof l->why, "TLS: the bridge stopped");
		l->state = TB_ENDED;
		SSL_CTX_free(l->ctx);
		tb.nlinks--;
		if (--l->refs == 0)
			free(l);
	}
	pthread_cond_broadcast(&tb.cond);
	tb.running = 0;
	pthread_mutex_unlock(&tb.mu);
}
