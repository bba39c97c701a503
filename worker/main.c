/*
 * comfyq-worker: the configuration table, signals and the event loop.
 * Everything the worker does happens on this one loop; see worker.h for the
 * modules. Exit status: 0 after a clean drain, 1 on a fatal error, 2 for a
 * bad configuration.
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "comfyq_paths.h"
#include "config.h"
#include "confine.h"
#include "controlnet.h"
#include "log.h"
#include "outputs_s3.h"
#include "rq_tls.h"
#include "sdnotify.h"
#include "template.h"
#include "util.h"
#include "worker.h"

static const char *const store_modes[] = { "dir", "redis", "both", "s3", NULL };
static const char *const raw_graph_modes[] = { "allow", "deny", NULL };

#define O(f) offsetof(struct worker_cfg, f)

static const struct cfg_entry worker_cfg_entries[] = {
	CFG_REDIS_ENTRIES(struct worker_cfg, redis_url, queue, tls),
	{ "comfyui-url", CFG_STR, O(comfyui_url), "http://127.0.0.1:8188",
	    .max = 1024, .text = "The ComfyUI this worker drives." },
	{ "worker-id", CFG_STR, O(worker_id), "", .max = 100,
	    .text = "Worker id; also ComfyUI's clientId (default host-pid)." },
	{ "pool", CFG_STR, O(pool), "", .max = 128,
	    .text = "Slot pool when no CUDA GPU is probed (default: the GPU's "
		    "uuid, else host:port of comfyui-url)." },
	{ "slots", CFG_INT, O(slots), "1", .min = 0, .max = 256,
	    .text = "The pool's capacity, set on first registration only "
		    "(then: comfyq slots set)." },
	{ "max-inflight", CFG_INT, O(max_inflight), "0", .min = 0, .max = 256,
	    .flags = CFG_RELOAD,
	    .text = "Cap on this worker's jobs in flight (0: the pool's "
		    "capacity)." },
	{ "vram-reserve-mb", CFG_INT, O(vram_reserve_mb), "1024", .min = 0,
	    .max = 1048576,
	    .text = "VRAM kept free: the pool's default budget is the probed "
		    "total minus this." },
	{ "gpu-device", CFG_INT, O(gpu_device), "0", .min = 0, .max = 64,
	    .text = "CUDA device index to probe." },
	{ "lease-ms", CFG_INT, O(lease_ms), "30000", .min = 1000,
	    .max = 3600000, .text = "Job lease; renewed by heartbeats." },
	{ "heartbeat-ms", CFG_INT, O(heartbeat_ms), "10000", .min = 200,
	    .max = 600000, .flags = CFG_RELOAD,
	    .text = "Heartbeat period (keep it well under lease-ms)." },
	{ "worker-ttl-ms", CFG_INT, O(worker_ttl_ms), "60000", .min = 1000,
	    .max = 86400000,
	    .text = "The worker record expires this long after a heartbeat." },
	{ "job-timeout-s", CFG_INT, O(job_timeout_s), "600", .min = 1,
	    .max = 86400, .flags = CFG_RELOAD,
	    .text = "Wall clock per job; a job's timeout_s may only lower "
		    "it." },
	{ "silence-timeout-s", CFG_INT, O(silence_timeout_s), "60", .min = 1,
	    .max = 86400, .flags = CFG_RELOAD,
	    .text = "No event for this long: ask ComfyUI where the prompt "
		    "is." },
	{ "ws-ping-s", CFG_INT, O(ws_ping_s), "20", .min = 1, .max = 3600,
	    .flags = CFG_RELOAD, .text = "WebSocket ping period." },
	{ "ws-pong-timeout-s", CFG_INT, O(ws_pong_timeout_s), "10", .min = 1,
	    .max = 3600, .flags = CFG_RELOAD,
	    .text = "No pong this long after a ping: the link is dead." },
	{ "http-timeout-ms", CFG_INT, O(http_timeout_ms), "30000", .min = 100,
	    .max = 3600000, .flags = CFG_RELOAD,
	    .text = "Timeout of one ComfyUI API call (output downloads have "
		    "output-timeout-ms)." },
	{ "progress-min-ms", CFG_INT, O(progress_min_ms), "250", .min = 0,
	    .max = 60000, .flags = CFG_RELOAD,
	    .text = "At most one progress event per job this often." },
	{ "retry-base-ms", CFG_INT, O(retry_base_ms), "2000", .min = 1,
	    .max = 86400000, .flags = CFG_RELOAD,
	    .text = "Backoff of a retried job: base..." },
	{ "retry-max-ms", CFG_INT, O(retry_max_ms), "300000", .min = 1,
	    .max = 86400000, .flags = CFG_RELOAD, .text = "...and cap." },
	{ "max-resubmits", CFG_INT, O(max_resubmits), "2", .min = 0, .max = 20,
	    .flags = CFG_RELOAD,
	    .text =
		"Prompts ComfyUI lost (restarts) submitted again per job." },
	{ "output-dir", CFG_STR, O(output_dir),
	    COMFYQ_DEFAULT_STATE_DIR "/outputs", .max = 1024,
	    .text = "Where outputs are stored: <dir>/<job id>/<file> (made "
		    "when missing, unless store is redis)." },
	{ "store", CFG_ENUM, O(store), "dir", .enums = store_modes,
	    .text = "Outputs to output-dir, to Redis strings with blob-ttl-s "
		    "(for pods whose disk the producer cannot reach), both, or "
		    "an S3 bucket (s3-*; staged in output-dir, removed once "
		    "uploaded)." },
	{ "blob-ttl-s", CFG_INT, O(blob_ttl_s), "86400", .min = 60,
	    .max = 31536000, .text = "TTL of outputs stored in Redis." },
	{ "s3-endpoint", CFG_STR, O(s3_endpoint), "", .max = 1024,
	    .text = "store s3: the S3 API's URL, scheme://host[:port] "
		    "(https://s3.us-east-1.amazonaws.com, "
		    "https://<account>.r2.cloudflarestorage.com)." },
	{ "s3-region", CFG_STR, O(s3_region), "us-east-1", .max = 63,
	    .text = "store s3: the bucket's region (auto for R2)." },
	{ "s3-bucket", CFG_STR, O(s3_bucket), "", .max = 63,
	    .text = "store s3: the bucket outputs go to." },
	{ "s3-prefix", CFG_STR, O(s3_prefix), "", .max = 512,
	    .text = "store s3: object keys are <prefix><job id>/<file>." },
	{ "s3-access-key", CFG_STR, O(s3_access_key), "", .max = 127,
	    .text = "store s3: the access key id." },
	{ "s3-secret-key", CFG_STR, O(s3_secret_key), "", .max = 255,
	    .flags = CFG_SECRET,
	    .text = "store s3: the secret access key (never printed)." },
	{ "s3-secret-key-file", CFG_STR, O(s3_secret_key_file), "", .max = 1024,
	    .text = "store s3: a file holding the secret access key, read "
		    "at start (instead of s3-secret-key)." },
	{ "s3-path-style", CFG_BOOL, O(s3_path_style), "false",
	    .text = "store s3: <endpoint>/<bucket>/<key> URLs (MinIO and "
		    "most S3-compatible stores) instead of "
		    "<bucket>.<host>/<key>." },
	{ "s3-presign-s", CFG_INT, O(s3_presign_s), "86400", .min = 1,
	    .max = S3_PRESIGN_MAX_S,
	    .text = "store s3: how long the presigned GET URL in each output "
		    "record works." },
	{ "s3-retries", CFG_INT, O(s3_retries), "3", .min = 0, .max = 10,
	    .text = "store s3: tries more of a request that failed at the "
		    "transport or with 5xx/429/408; then the job fails "
		    "internal." },
	{ "s3-part-mb", CFG_INT, O(s3_part_mb), "16", .min = 5, .max = 5120,
	    .text = "store s3: larger outputs go up as a multipart upload "
		    "in parts of this many MiB; smaller in one PUT." },
	{ "s3-timeout-ms", CFG_INT, O(s3_timeout_ms), "120000", .min = 100,
	    .max = 86400000,
	    .text = "store s3: time for one request (one PUT or part)." },
	{ "max-output-bytes", CFG_INT, O(max_output_bytes), "536870912",
	    .min = 1024, .max = 4294967296LL,
	    .text = "Largest output file accepted." },
	{ "max-output-pixels", CFG_INT, O(max_output_pixels), "67108864",
	    .min = 1, .max = 1073741824,
	    .text = "Largest still image accepted, in pixels, as its header "
		    "declares it (decoding one takes about 8 bytes a pixel)." },
	{ "output-timeout-ms", CFG_INT, O(output_timeout_ms), "120000",
	    .min = 100, .max = 86400000, .flags = CFG_RELOAD,
	    .text = "Time to download one output file from ComfyUI." },
	{ "output-fsync", CFG_BOOL, O(output_fsync), "true",
	    .flags = CFG_RELOAD,
	    .text =
		"Flush each stored file before its rename and the job's "
		"folder once before complete (false: leave it to the OS)." },
	{ "drain-grace-s", CFG_INT, O(drain_grace_s), "30", .min = 0,
	    .max = 86400, .flags = CFG_RELOAD,
	    .text = "On SIGTERM, time for jobs in flight to finish." },
	{ "block-timeout-s", CFG_INT, O(block_timeout_s), "30", .min = 1,
	    .max = 3600,
	    .text = "Safety net on an idle wait (wake-ups come from tokens)." },
	{ "comfyui-start-cmd", CFG_STR, O(start_cmd), "", .max = 4096,
	    .text = "Shell command that starts ComfyUI when it is down." },
	{ "comfyui-start-timeout-s", CFG_INT, O(start_timeout_s), "120",
	    .min = 1, .max = 3600,
	    .text = "How long a started ComfyUI has to answer." },
	{ "health-interval-ms", CFG_INT, O(health_interval_ms), "2000",
	    .min = 100, .max = 600000, .flags = CFG_RELOAD,
	    .text =
		"Health probe period while ComfyUI is down (x5 while up)." },
	{ "workflows-dir", CFG_STR, O(workflows_dir),
	    COMFYQ_DEFAULT_WORKFLOWS_DIR, .max = 1024, .flags = CFG_DIR,
	    .text = "Workflow templates (loaded at start)." },
	{ "controlnet-models", CFG_STR, O(controlnet_models), CN_MAP_DEFAULT,
	    .max = 4096,
	    .text = "ControlNet type to model file: type=FILE,type=FILE." },
	{ "lora-weight-scale", CFG_DOUBLE, O(lora_weight_scale), "1", .dmin = 0,
	    .dmax = 10, .text = "Every LoRA strength is multiplied by this." },
	{ "input-max-bytes", CFG_INT, O(input_max_bytes), "20971520",
	    .min = 1024, .max = 1073741824,
	    .text = "Largest input image, decoded or downloaded." },
	{ "input-timeout-ms", CFG_INT, O(input_timeout_ms), "15000", .min = 100,
	    .max = 600000, .text = "Time to download one input image URL." },
	{ "allow-private-urls", CFG_BOOL, O(allow_private_urls), "false",
	    .text = "Input URLs may reach loopback and private addresses." },
	{ "threads", CFG_INT, O(threads), "2", .min = 1, .max = 64,
	    .text = "Threads for input downloads, decoding and Canny." },
	{ "prefetch", CFG_INT, O(prefetch), "2", .min = 0, .max = 64,
	    .flags = CFG_RELOAD,
	    .text = "Jobs with URL inputs held without a GPU slot while their "
		    "inputs download (0: such a job takes its slot first)." },
	{ "raw-graphs", CFG_ENUM, O(raw_graphs), "allow",
	    .enums = raw_graph_modes, .flags = CFG_RELOAD,
	    .text = "Jobs may send a raw API-format graph (allow), or only "
		    "name templates (deny)." },
	{ "graph-files", CFG_STR, O(graph_files), "", .max = 4096,
	    .text = "Files in ComfyUI's input folder any raw graph may load, "
		    "comma-separated: a name, or a prefix ending in / "
		    "(examples/); empty: only the job's own inputs." },
	{ "model-aware", CFG_BOOL, O(model_aware), "true", .flags = CFG_RELOAD,
	    .text = "Claim jobs that use the checkpoint this worker's ComfyUI "
		    "holds first, within a lane (false: fair order only)." },
	{ "model-max-wait-ms", CFG_INT, O(model_max_wait_ms), "10000", .min = 0,
	    .max = 86400000, .flags = CFG_RELOAD,
	    .text = "Model-aware: a job is never passed over by one that came "
		    "more than this after it." },
	{ "model-max-lead", CFG_INT, O(model_max_lead), "32", .min = 0,
	    .max = 1000000, .flags = CFG_RELOAD,
	    .text = "Model-aware: a job is taken ahead of the lane's next only "
		    "within this many rounds of fair order." },
	CFG_LOG_ENTRIES(struct worker_cfg, log_level, log_format),
};

const struct cfg_table worker_cfg_table = {
	"comfyq-worker",
	"Claims jobs from Redis and runs them on one ComfyUI.",
	worker_cfg_entries,
	sizeof worker_cfg_entries / sizeof worker_cfg_entries[0],
	sizeof(struct worker_cfg),
};

/* Settings that must agree with each other. */
static int
worker_cfg_check(const struct worker_cfg *c, char *err, size_t errlen)
{
	if (c->heartbeat_ms * 2 > c->lease_ms) {
		snprintf(err, errlen,
		    "heartbeat-ms: %lld must be at most half of lease-ms (%lld)",
		    c->heartbeat_ms, c->lease_ms);
		return (-1);
	}
	struct cn_map m;

	if (cn_map_parse(c->controlnet_models, &m, err, errlen) == -1 ||
	    confine_list_check(c->graph_files, err, errlen) == -1)
		return (-1);
	if (c->store == STORE_S3 && output_s3_check(c, err, errlen) == -1)
		return (-1);
	if (c->store != STORE_REDIS &&
	    config_check_dir(
		"output-dir", c->output_dir, CFG_DIR_OUT, err, errlen) == -1)
		return (-1);
	return (0);
}

/* worker_cfg_check in config_reload_check's shape. */
static int
worker_cfg_check_any(const void *c, char *err, size_t errlen)
{
	return (worker_cfg_check(c, err, errlen));
}

/* The templates of workflows-dir, loaded once, before the loop. */
static int
worker_load_templates(const struct worker_cfg *c, struct wf_registry **wf,
    char *err, size_t errlen)
{
	char why[768];

	if ((*wf = wf_load(c->workflows_dir, why, sizeof why)) == NULL) {
		snprintf(err, errlen, "workflows-dir: %s", why);
		return (-1);
	}
	return (0);
}

struct main_ctx {
	struct worker	  *w;
	struct worker_cfg *cfg;
};

static void
main_signal(evutil_socket_t sig, short ev, void *arg)
{
	struct main_ctx *m = arg;
	char		 err[512];

	(void)ev;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		worker_drain(m->w);
		break;
	case SIGHUP:
		if (config_reload_check(&worker_cfg_table, m->cfg,
			worker_cfg_check_any, err, sizeof err) == -1) {
			log_warnx("reload refused: %s", err);
			break;
		}
		log_level = m->cfg->log_level;
		worker_reloaded(m->w);
		log_notice("configuration reloaded");
		break;
	default:
		fatalx("unexpected signal %d", (int)sig);
	}
}

int
main(int argc, char **argv)
{
	static const int    sigs[] = { SIGTERM, SIGINT, SIGHUP };
	struct worker_cfg   cfg;
	struct main_ctx	    m;
	struct event_base  *base;
	struct event	   *sev[3];
	struct wf_registry *wf = NULL;
	char		    err[1024];
	size_t		    i;
	int		    rc, ok = 1;

	memset(&cfg, 0, sizeof cfg);
	sdnotify_init(); /* before comfyui-start-cmd may run */
	rc = config_load(&worker_cfg_table, &cfg, argc, argv, err, sizeof err);
	if (rc == CONFIG_OK || rc == CONFIG_CHECK)
		ok = worker_cfg_check(&cfg, err, sizeof err) == 0 &&
		    rq_tls_setup(&cfg.tls, err, sizeof err) == 0 &&
		    worker_load_templates(&cfg, &wf, err, sizeof err) == 0;
	if (rc == CONFIG_ERROR ||
	    ((rc == CONFIG_OK || rc == CONFIG_CHECK) && !ok))
		fprintf(stderr, "comfyq-worker: %s\n", err);
	else if (rc == CONFIG_CHECK)
		printf("comfyq-worker: configuration OK (%zu templates)\n",
		    wf_count(wf));
	if (rc != CONFIG_OK || !ok) {
		wf_registry_free(wf);
		config_free(&worker_cfg_table, &cfg);
		return (rc == CONFIG_ERROR || !ok ? 2 : 0);
	}
	log_init("comfyq-worker", cfg.log_level, cfg.log_format == 1);
	config_dump(&worker_cfg_table, &cfg);
	signal(SIGPIPE, SIG_IGN);

	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	m.cfg = &cfg;
	m.w = worker_new(base, &cfg, wf);
	for (i = 0; i < 3; i++) {
		sev[i] = evsignal_new(base, sigs[i], main_signal, &m);
		evsignal_add(sev[i], NULL);
	}
	event_base_dispatch(base);
	worker_free(m.w);
	for (i = 0; i < 3; i++)
		event_free(sev[i]);
	event_base_free(base);
	config_free(&worker_cfg_table, &cfg);
	log_notice("exited");
	return (0);
}
