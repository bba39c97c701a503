/*
 * comfyq-scheduler's settings: one table drives parsing, bounds, --help,
 * the startup dump and SIGHUP (entries marked CFG_RELOAD). It holds the
 * settings of every scheduler module (HTTP, SSE, webhooks), so a
 * deployment has one place to look. Each is COMFYQ_<NAME> in the
 * environment, `name = value` in the --config file, or --name VALUE.
 * A module reads s->cfg live; a reloaded string is freed and replaced, so
 * nobody keeps a pointer into the struct across calls.
 */
#include <stddef.h>

#include "comfyq_paths.h"
#include "config.h"
#include "sched.h"

#define OFF(f) offsetof(struct sched_cfg, f)

static const struct cfg_entry sched_entries[] = {
	CFG_REDIS_ENTRIES(struct sched_cfg, redis_url, queue, tls),
	{ "listen", CFG_STR, OFF(listen), "127.0.0.1:8680", .max = 256,
	    .text = "Address of the public API: HOST:PORT (port 0 picks a "
		    "free one; the log says which)." },
	{ "admin-listen", CFG_STR, OFF(admin_listen), "", .max = 256,
	    .text = "HOST:PORT serving /metrics (and the dashboard) apart "
		    "from the API; empty: they are on the public listener." },
	{ "tokens", CFG_STR, OFF(tokens), "", .max = 65536,
	    .flags = CFG_RELOAD | CFG_SECRET,
	    .text = "Bearer tokens, comma-separated NAME:TENANT_PREFIX:SECRET "
		    "(TENANT_PREFIX * for any tenant; the secret is what "
		    "follows the last ':'); empty: no authentication (a "
		    "warning at start)." },
	{ "body-max-bytes", CFG_INT, OFF(body_max_bytes), "20971520",
	    .min = 1024, .max = 1073741824, .flags = CFG_RELOAD,
	    .text = "Largest request body; larger: 413." },
	{ "header-max-bytes", CFG_INT, OFF(header_max_bytes), "16384",
	    .min = 1024, .max = 1048576, .flags = CFG_RELOAD,
	    .text = "Largest request line plus headers; larger: 431." },
	{ "max-queue-depth", CFG_INT, OFF(max_queue_depth), "0", .min = 0,
	    .max = 1000000000, .flags = CFG_RELOAD,
	    .text = "POST /v1/jobs answers 503 with Retry-After while the "
		    "ready lanes hold this many jobs or more; 0: no limit." },
	{ "retry-after-s", CFG_INT, OFF(retry_after_s), "5", .min = 1,
	    .max = 3600, .flags = CFG_RELOAD,
	    .text = "Retry-After of a 503 for a full queue." },
	{ "workflows-dir", CFG_STR, OFF(workflows_dir),
	    COMFYQ_DEFAULT_WORKFLOWS_DIR, .max = 4096, .flags = CFG_DIR,
	    .text = "Workflow templates, loaded at start: specs are checked "
		    "against them before anything is queued." },
	{ "output-dir", CFG_STR, OFF(output_dir),
	    COMFYQ_DEFAULT_STATE_DIR "/outputs", .max = 4096,
	    .flags = CFG_DIR | CFG_DIR_MAKE,
	    .text = "The workers' output store (their output-dir): "
		    "GET /v1/jobs/{id}/outputs/{n} reads <dir>/<job>/<file> "
		    "(made when missing)." },
	{ "request-timeout-s", CFG_INT, OFF(request_timeout_s), "30", .min = 1,
	    .max = 3600, .flags = CFG_RELOAD,
	    .text = "A connection idle or slow this long, reading a request "
		    "or writing a reply, is closed." },
	{ "cors-origin", CFG_STR, OFF(cors_origin), "", .max = 1024,
	    .flags = CFG_RELOAD,
	    .text = "Access-Control-Allow-Origin for browsers (an origin or "
		    "*); empty: no CORS headers, preflights get 405." },
	{ "sse-max-clients", CFG_INT, OFF(sse_max_clients), "10000", .min = 1,
	    .max = 1000000, .flags = CFG_RELOAD,
	    .text = "Most Server-Sent Events clients held at once." },
	{ "sse-buffer-max-bytes", CFG_INT, OFF(sse_buffer_max_bytes), "262144",
	    .min = 4096, .max = 67108864, .flags = CFG_RELOAD,
	    .text = "An SSE client whose unsent output passes this is "
		    "dropped." },
	{ "sse-keepalive-s", CFG_INT, OFF(sse_keepalive_s), "15", .min = 1,
	    .max = 3600, .flags = CFG_RELOAD,
	    .text = "A keep-alive comment goes to every SSE client this "
		    "often." },
	{ "sse-history", CFG_INT, OFF(sse_history), "1024", .min = 0,
	    .max = 1000000,
	    .text = "Recent events kept in memory for Last-Event-ID resumes." },
	{ "webhook-secret", CFG_STR, OFF(webhook_secret), "", .max = 4096,
	    .flags = CFG_SECRET,
	    .text = "Key of the webhook signatures (Standard Webhooks); "
		    "empty: webhooks off (jobs with a webhook URL still run, "
		    "their deliveries wait)." },
	{ "webhook-max-age-s", CFG_INT, OFF(webhook_max_age_s), "86400",
	    .min = 60, .max = 2592000, .flags = CFG_RELOAD,
	    .text = "A delivery retried this long after its job ended fails "
		    "for good." },
	{ "webhook-timeout-ms", CFG_INT, OFF(webhook_timeout_ms), "10000",
	    .min = 100, .max = 600000, .flags = CFG_RELOAD,
	    .text = "Time for one webhook POST." },
	{ "webhook-retry-base-ms", CFG_INT, OFF(webhook_retry_base_ms), "1000",
	    .min = 10, .max = 3600000, .flags = CFG_RELOAD,
	    .text = "Backoff of a failed delivery: base..." },
	{ "webhook-retry-max-ms", CFG_INT, OFF(webhook_retry_max_ms), "600000",
	    .min = 10, .max = 86400000, .flags = CFG_RELOAD,
	    .text = "...and cap (with jitter)." },
	{ "webhook-concurrency", CFG_INT, OFF(webhook_concurrency), "16",
	    .min = 1, .max = 1024,
	    .text = "Most webhook deliveries in flight from this process." },
	{ "webhook-allow-private", CFG_BOOL, OFF(webhook_allow_private),
	    "false", .flags = CFG_RELOAD,
	    .text = "Webhook URLs may reach loopback and private addresses." },
	{ "webhook-lease-ms", CFG_INT, OFF(webhook_lease_ms), "30000",
	    .min = 1000, .max = 3600000, .flags = CFG_RELOAD,
	    .text = "A claimed delivery is this process's for this long; "
		    "another scheduler may take it after." },
	{ "webhook-progress-interval-ms", CFG_INT,
	    OFF(webhook_progress_interval_ms), "1000", .min = 100,
	    .max = 3600000, .flags = CFG_RELOAD,
	    .text = "A job's progress webhooks go at most this often (each "
		    "carries the latest progress)." },
	CFG_LOG_ENTRIES(struct sched_cfg, log_level, log_format),
};

const struct cfg_table sched_cfg_table = { "comfyq-scheduler",
	"The HTTP API of a comfyq queue: jobs, their outputs and progress, "
	"workflows, workers,\npools and stats, over Redis (stateless: run "
	"several behind a load balancer).",
	sched_entries, sizeof sched_entries / sizeof sched_entries[0],
	sizeof(struct sched_cfg) };
