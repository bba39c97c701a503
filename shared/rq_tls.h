/*
 * Redis over TLS (rediss:// URLs). Debian 12's hiredis (0.14) has no TLS,
 * so a hiredis context speaks plain RESP into a local socket and the TLS
 * bridge (tls_bridge.h) carries it to the server: a socketpair for a
 * blocking context, a private unix socket for an async one (hiredis 0.14
 * cannot build an async context on a given fd). docs/design.md §2 tells
 * why. The settings are the process's, set once by rq_tls_setup from the
 * tls-* entries every program has (CFG_REDIS_ENTRIES in config.h); a
 * process that never calls it (a test, a bench) reads the same entries
 * from the environment at its first rediss:// connection. Only TLS loads
 * the system's CA store, at the first rediss:// connection (rq_tls.c).
 * rq.c,
 * rq_async.c and rq_sentinel.c connect through rq_tls_connect and
 * rq_tls_connect_async.
 */
#ifndef COMFYQ_RQ_TLS_H
#define COMFYQ_RQ_TLS_H

#include <stddef.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

struct rq_url;
struct tls_bridge_link;

/* Empty strings are unset. */
struct rq_tls_cfg {
	char *ca_file;	   /* CAs to trust; unset: the system's store */
	char *cert_file;   /* client certificate (chain), with key_file */
	char *key_file;	   /* its private key */
	char *server_name; /* SNI and the name checked; unset: the URL's host */
	int   insecure;	   /* check neither the certificate nor the name */
};

int rq_tls_setup(const struct rq_tls_cfg *cfg, char *err, size_t errlen);
int rq_tls_store_loaded(void);

redisContext	  *rq_tls_connect(const struct rq_url *u, int timeout_ms,
	 struct tls_bridge_link **link, char *err, size_t errlen);
redisAsyncContext *rq_tls_connect_async(const struct rq_url *u, int timeout_ms,
    struct tls_bridge_link **link, char *err, size_t errlen);

#endif
