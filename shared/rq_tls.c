/*
 * Redis over TLS (see rq_tls.h): the process's TLS settings as one
 * SSL_CTX, and hiredis contexts whose socket leads into the TLS bridge.
 *
 * Blocking: a socketpair; the bridge takes one end and the caller waits
 * (within the connect timeout) until the handshake is done or failed,
 * then hiredis gets the other end with redisConnectFd. A failed handshake
 * is a connect error naming the reason, never a context that hangs.
 *
 * Async: hiredis 0.14 builds an async context only by connecting itself
 * (redisAsyncConnect, redisAsyncConnectUnix), so the context connects to
 * a unix socket listening in a fresh mkdtemp folder (mode 0700: nobody
 * else can reach it), the connection is accepted here at once (a unix
 * connect completes into the listen backlog), its peer is checked to be
 * this process, and the socket file and folder are removed before the
 * accepted end goes to the bridge: the path lives for the span of this
 * call. The handshake runs behind hiredis's back; a failure closes the
 * socket, which rq_async sees as a dropped connection and answers with
 * its reconnect and backoff, logging the bridge's reason.
 *
 * Verification is on unless tls-insecure: the chain against tls-ca-file
 * (or the system's store), the name against tls-server-name (or the URL's
 * host) by OpenSSL's own host or IP check; SNI carries the name.
 *
 * Nothing is loaded that no connection needs: the system's store (its
 * bundle costs about 250 M instructions to parse) is loaded at the first
 * rediss:// connection, never for a process on redis:// or unix://; and
 * with no tls-* file set the SSL_CTX itself waits for that connection
 * too. Files that are set are loaded by rq_tls_setup, so a bad one stops
 * a program at start whatever its URL.
 */
#define _GNU_SOURCE /* accept4, struct ucred */
#include <errno.h>
#include <netdb.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "config.h"
#include "log.h"
#include "rq_tls.h"
#include "rq_url.h"
#include "tls_bridge.h"
#include "xmalloc.h"

static struct {
	pthread_mutex_t	  mu;
	struct rq_tls_cfg cfg; /* copies; NULL strings: never set up */
	SSL_CTX		 *ctx;
	int		  set;	      /* cfg came from rq_tls_setup */
	int		  store_due;  /* ctx still needs the system's store */
	int		  store_done; /* the system's store is loaded */
	int		  at_exit;
	int		  warned;
} rt = { .mu = PTHREAD_MUTEX_INITIALIZER };

static const char *
rq_tls_str(const char *s)
{
	return (s != NULL ? s : "");
}

/* OpenSSL's last reason, and the queue cleared. */
static const char *
rq_tls_ssl_reason(void)
{
	const char *r = ERR_reason_error_string(ERR_peek_last_error());

	ERR_clear_error();
	return (r != NULL ? r : "unknown error");
}

static int
rq_tls_readable(const char *setting, const char *path, char *err, size_t errlen)
{
	if (access(path, R_OK) == 0)
		return (0);
	snprintf(err, errlen, "%s: %s: %s", setting, path, strerror(errno));
	return (-1);
}

/* Whether c's verification needs the system's store (no tls-ca-file). */
static int
rq_tls_wants_store(const struct rq_tls_cfg *c)
{
	return (!c->insecure && *rq_tls_str(c->ca_file) == '\0');
}

/* Loads the system's store into ctx. Under rt.mu. */
static int
rq_tls_load_store(SSL_CTX *ctx, char *err, size_t errlen)
{
	if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		snprintf(err, errlen, "tls-ca-file: the system's CA store: %s",
		    rq_tls_ssl_reason());
		return (-1);
	}
	rt.store_done = 1;
	return (0);
}

/*
 * An SSL_CTX for c, without the system's store (rq_tls_wants_store says
 * whether it needs it); NULL with the setting at fault named in err.
 */
static SSL_CTX *
rq_tls_ctx_new(const struct rq_tls_cfg *c, char *err, size_t errlen)
{
	const char *ca = rq_tls_str(c->ca_file),
		   *cert = rq_tls_str(c->cert_file);
	const char *key = rq_tls_str(c->key_file);
	SSL_CTX	   *ctx;

	OPENSSL_init_ssl(0, NULL);
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "TLS: %s", rq_tls_ssl_reason());
		return (NULL);
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(
	    ctx, c->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	if (*ca != '\0') {
		if (rq_tls_readable("tls-ca-file", ca, err, errlen) == -1)
			goto fail;
		if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
			snprintf(err, errlen, "tls-ca-file: %s: %s", ca,
			    rq_tls_ssl_reason());
			goto fail;
		}
	}
	if (*cert == '\0' && *key == '\0')
		return (ctx);
	if (*cert == '\0' || *key == '\0') {
		snprintf(
		    err, errlen, "tls-cert-file and tls-key-file go together");
		goto fail;
	}
	if (rq_tls_readable("tls-cert-file", cert, err, errlen) == -1 ||
	    rq_tls_readable("tls-key-file", key, err, errlen) == -1)
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(err, errlen, "tls-cert-file: %s: %s", cert,
		    rq_tls_ssl_reason());
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "tls-key-file: %s: %s", key,
		    rq_tls_ssl_reason());
		goto fail;
	}
	return (ctx);
fail:
	SSL_CTX_free(ctx);
	return (NULL);
}

static void
rq_tls_forget(void)
{
	free(rt.cfg.ca_file);
	free(rt.cfg.cert_file);
	free(rt.cfg.key_file);
	free(rt.cfg.server_name);
	memset(&rt.cfg, 0, sizeof rt.cfg);
	SSL_CTX_free(rt.ctx);
	rt.ctx = NULL;
	rt.set = rt.store_due = 0;
}

/* At exit: the bridge's thread and links first, then the context. */
static void
rq_tls_at_exit(void)
{
	tls_bridge_stop();
	pthread_mutex_lock(&rt.mu);
	rq_tls_forget();
	pthread_mutex_unlock(&rt.mu);
}

/* Once OpenSSL is initialised (a context made): its atexit handler is
 * registered, so ours, registered after it, runs before it. Under rt.mu. */
static void
rq_tls_at_exit_once(void)
{
	if (!rt.at_exit) {
		rt.at_exit = 1;
		atexit(rq_tls_at_exit);
	}
}

/* Keeps ctx (NULL: made at the first connection) and a copy of c as the
 * process's. Under rt.mu. */
static void
rq_tls_keep(const struct rq_tls_cfg *c, SSL_CTX *ctx)
{
	rq_tls_forget();
	rt.cfg.ca_file = xstrdup(rq_tls_str(c->ca_file));
	rt.cfg.cert_file = xstrdup(rq_tls_str(c->cert_file));
	rt.cfg.key_file = xstrdup(rq_tls_str(c->key_file));
	rt.cfg.server_name = xstrdup(rq_tls_str(c->server_name));
	rt.cfg.insecure = c->insecure;
	rt.ctx = ctx;
	rt.set = 1;
	rt.store_due = rq_tls_wants_store(c);
	if (ctx != NULL)
		rq_tls_at_exit_once();
}

/*
 * Sets the process's TLS settings (the tls-* entries). The files set are
 * loaded now, so a bad one stops a program at start; the system's store
 * waits for the first rediss:// connection (see the top). Returns 0, or
 * -1 with the setting at fault in err.
 */
int
rq_tls_setup(const struct rq_tls_cfg *c, char *err, size_t errlen)
{
	SSL_CTX *ctx = NULL;

	if ((*rq_tls_str(c->ca_file) != '\0' ||
		*rq_tls_str(c->cert_file) != '\0' ||
		*rq_tls_str(c->key_file) != '\0') &&
	    (ctx = rq_tls_ctx_new(c, err, errlen)) == NULL)
		return (-1);
	pthread_mutex_lock(&rt.mu);
	rq_tls_keep(c, ctx);
	pthread_mutex_unlock(&rt.mu);
	return (0);
}

/*
 * Never set up (a tool or a test that reads no settings of its own): the
 * tls-* settings from the environment (COMFYQ_TLS_CA_FILE ...), as every
 * program reads them, through the same entries. Under rt.mu.
 */
static void
rq_tls_setup_env(char *err, size_t errlen)
{
	struct rq_tls_env {
		struct rq_tls_cfg tls;
	} env;
	static const struct cfg_entry entries[] = {
		CFG_REDIS_TLS_ENTRIES(struct rq_tls_env, tls),
	};
	static const struct cfg_table table = { "comfyq", NULL, entries,
		sizeof entries / sizeof entries[0], sizeof(struct rq_tls_env) };
	SSL_CTX			     *ctx;

	memset(&env, 0, sizeof env);
	if (config_load_env(&table, &env, err, errlen) == 0 &&
	    (ctx = rq_tls_ctx_new(&env.tls, err, errlen)) != NULL)
		rq_tls_keep(&env.tls, ctx);
	config_free(&table, &env);
}

/*
 * The context for a connection, made and completed now if the setup left
 * that for the first one. Under rt.mu; NULL with the reason in err.
 */
static SSL_CTX *
rq_tls_ctx_ready(char *err, size_t errlen)
{
	if (!rt.set)
		rq_tls_setup_env(err, errlen);
	else if (rt.ctx == NULL &&
	    (rt.ctx = rq_tls_ctx_new(&rt.cfg, err, errlen)) != NULL)
		rq_tls_at_exit_once();
	if (rt.ctx == NULL)
		return (NULL);
	if (rt.store_due) {
		if (rq_tls_load_store(rt.ctx, err, errlen) == -1)
			return (NULL);
		rt.store_due = 0;
	}
	return (rt.ctx);
}

/* Whether the system's CA store was loaded (a test's look inside). */
int
rq_tls_store_loaded(void)
{
	int n;

	pthread_mutex_lock(&rt.mu);
	n = rt.store_done;
	pthread_mutex_unlock(&rt.mu);
	return (n);
}

/*
 * Resolves u and fills t for the bridge (the context with a reference of
 * the caller's, which it drops once the bridge took its own). 0, or -1
 * with the reason in err.
 */
static int
rq_tls_target(const struct rq_url *u, int timeout_ms,
    struct tls_bridge_target *t, char *err, size_t errlen)
{
	struct addrinfo hints, *ai;
	char		port[16];
	int		rc, warn = 0;

	memset(t, 0, sizeof *t);
	pthread_mutex_lock(&rt.mu);
	if (rq_tls_ctx_ready(err, errlen) != NULL) {
		SSL_CTX_up_ref(rt.ctx);
		t->ctx = rt.ctx;
		t->verify = !rt.cfg.insecure;
		t->name = xstrdup(
		    *rt.cfg.server_name != '\0' ? rt.cfg.server_name : u->host);
		warn = rt.cfg.insecure && !rt.warned;
		rt.warned |= warn;
	}
	pthread_mutex_unlock(&rt.mu);
	if (t->ctx == NULL)
		return (-1);
	if (warn)
		log_warnx(
		    "redis: tls-insecure is set: the server's certificate "
		    "and name are not checked");
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof port, "%d", u->port);
	if ((rc = getaddrinfo(u->host, port, &hints, &ai)) != 0) {
		snprintf(err, errlen, "%s", gai_strerror(rc));
		goto fail;
	}
	t->ai = ai;
	t->host = u->host;
	t->timeout_ms = timeout_ms;
	return (0);
fail:
	SSL_CTX_free(t->ctx);
	free((char *)t->name);
	return (-1);
}

static void
rq_tls_target_free(struct tls_bridge_target *t)
{
	freeaddrinfo((struct addrinfo *)t->ai);
	SSL_CTX_free(t->ctx);
	free((char *)t->name);
}

/*
 * A blocking context over TLS: up (handshake done) within timeout_ms, or
 * NULL with the reason in err. *link is the bridge's handle for the
 * reason a later failure had; the caller releases it.
 */
redisContext *
rq_tls_connect(const struct rq_url *u, int timeout_ms,
    struct tls_bridge_link **link, char *err, size_t errlen)
{
	struct tls_bridge_target t;
	struct tls_bridge_link	*l;
	redisContext		*ctx;
	int			 sv[2];

	*link = NULL;
	if (rq_tls_target(u, timeout_ms, &t, err, errlen) == -1)
		return (NULL);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		rq_tls_target_free(&t);
		return (NULL);
	}
	l = tls_bridge_open(sv[1], &t, err, errlen);
	rq_tls_target_free(&t);
	if (l == NULL) {
		close(sv[0]);
		close(sv[1]);
		return (NULL);
	}
	if (tls_bridge_wait(l, err, errlen) == 0) {
		if ((ctx = redisConnectFd(sv[0])) != NULL) {
			*link = l;
			return (ctx);
		}
		snprintf(err, errlen, "out of memory");
	}
	close(sv[0]); /* the bridge ends the link */
	tls_bridge_release(l);
	return (NULL);
}

/* A fresh 0700 folder for the socket file, under TMPDIR if it fits. */
static int
rq_tls_private_dir(char *dir, size_t len, char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");

	if (tmp == NULL || *tmp != '/' || strlen(tmp) > 64)
		tmp = "/tmp";
	snprintf(dir, len, "%s/comfyq-tls.XXXXXX", tmp);
	if (mkdtemp(dir) != NULL)
		return (0);
	snprintf(
	    err, errlen, "TLS bridge: mkdtemp %s: %s", dir, strerror(errno));
	return (-1);
}

/* The accepted end of the context's connection, checked to be ours. */
static int
rq_tls_accept(int lfd, char *err, size_t errlen)
{
	struct ucred cr;
	socklen_t    n = sizeof cr;
	int	     fd;

	if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) ==
	    -1) {
		snprintf(
		    err, errlen, "TLS bridge: accept: %s", strerror(errno));
		return (-1);
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &n) == -1 ||
	    cr.pid != getpid()) {
		snprintf(err, errlen,
		    "TLS bridge: another process connected to the private socket");
		close(fd);
		return (-1);
	}
	return (fd);
}

/*
 * An async context over TLS (see the top). The handshake is still under
 * way when this returns; its failure drops the connection. NULL with the
 * reason in err when not even the local side could be set up.
 */
redisAsyncContext *
rq_tls_connect_async(const struct rq_url *u, int timeout_ms,
    struct tls_bridge_link **link, char *err, size_t errlen)
{
	struct tls_bridge_target t;
	struct sockaddr_un	 sa;
	redisAsyncContext	*ac = NULL;
	char			 dir[96];
	int			 lfd = -1, fd = -1, made = 0;

	*link = NULL;
	if (rq_tls_target(u, timeout_ms, &t, err, errlen) == -1)
		return (NULL);
	if (rq_tls_private_dir(dir, sizeof dir, err, errlen) == -1)
		goto out;
	made = 1;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/s", dir);
	if ((lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof sa) == -1 ||
	    listen(lfd, 1) == -1) {
		snprintf(err, errlen, "TLS bridge: %s: %s", sa.sun_path,
		    strerror(errno));
		goto out;
	}
	ac = redisAsyncConnectUnix(sa.sun_path);
	if (ac == NULL || ac->err) {
		snprintf(err, errlen, "TLS bridge: %s",
		    ac != NULL ? ac->errstr : "out of memory");
		goto out;
	}
	if ((fd = rq_tls_accept(lfd, err, errlen)) == -1)
		goto out;
	if ((*link = tls_bridge_open(fd, &t, err, errlen)) == NULL)
		close(fd);
out:
	if (lfd != -1)
		close(lfd);
	if (made) {
		unlink(sa.sun_path);
		rmdir(dir);
	}
	rq_tls_target_free(&t);
	if (*link == NULL && ac != NULL) {
		redisAsyncFree(ac);
		ac = NULL;
	}
	return (ac);
}
