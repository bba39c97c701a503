/*
 * comfyq-scheduler: the HTTP front of a queue. Stateless over Redis, so
 * several run behind a load balancer and nothing is lost when one is
 * killed: jobs, their events and webhook deliveries live in Redis; what a
 * process keeps (SSE clients, the recent events it fans out, metrics
 * counters) is rebuilt by the next one.
 *
 * This header is the object every scheduler module shares: the settings
 * (one table, sched_config.c) and the handles made at start. Each module
 * keeps its own state behind its own header (sched_http.h, sched_sse.h,
 * sched_metrics.h, sched_webhook.h).
 */
#ifndef COMFYQ_SCHED_H
#define COMFYQ_SCHED_H

#include "rq.h"
#include "rq_tls.h"

struct event_base;
struct httpc;
struct metrics;
struct rq_async;
struct sched_auth;
struct sched_http;
struct sse;
struct webhooks;
struct wf_registry;

struct sched_cfg {
	char	 *redis_url;
	char	 *queue;
	char	 *listen;	/* host:port of the public API */
	char	 *admin_listen; /* "" or host:port for /metrics and / */
	char	 *tokens;	/* "" or name:tenant_prefix:secret,... */
	long long body_max_bytes;
	long long header_max_bytes;
	long long max_queue_depth; /* 0: no backpressure */
	long long retry_after_s;
	char	 *workflows_dir;
	char	 *output_dir;
	long long request_timeout_s;
	char	 *cors_origin; /* "": CORS off */
	long long sse_max_clients;
	long long sse_buffer_max_bytes;
	long long sse_keepalive_s;
	long long sse_history;
	char	 *webhook_secret; /* "": deliveries wait */
	long long webhook_max_age_s;
	long long webhook_timeout_ms;
	long long webhook_retry_base_ms;
	long long webhook_retry_max_ms;
	long long webhook_concurrency;
	int	  webhook_allow_private;
	long long webhook_lease_ms;
	long long webhook_progress_interval_ms;
	int	  log_level;
	int	  log_format;

	struct rq_tls_cfg tls; /* a rediss:// URL's tls-* settings */
};

struct sched {
	struct event_base  *base;
	struct sched_cfg   *cfg; /* live: SIGHUP replaces what may change */
	char		    prefix[RQ_PREFIX_MAX];
	struct rq_async	   *rc;	  /* commands (rqfn and plain) */
	struct httpc	   *http; /* outgoing HTTP (webhooks) */
	struct wf_registry *workflows;
	struct sse	   *sse;     /* sched_sse.h */
	struct metrics	   *metrics; /* sched_metrics.h */
	struct webhooks	   *wh;	     /* sched_webhook.h */
	long long	    started_ms;
	struct sched_auth  *auth;      /* the tokens (sched_auth.h), live */
	struct sched_http  *httpd;     /* the listeners (sched_http.h) */
	int		    output_fd; /* output-dir, opened at start */
};

extern const struct cfg_table sched_cfg_table;

#endif
