/*
 * comfyq-worker's settings: the struct main.c's config table fills
 * (worker_cfg_table) and SIGHUP updates in place, so every module that
 * keeps a pointer to it reads the values now in force. Each module takes
 * it from its creator (worker_new, backend_new, run_start's run_env);
 * none reaches for another module's copy.
 */
#ifndef COMFYQ_SETTINGS_H
#define COMFYQ_SETTINGS_H

#include "rq_tls.h"

enum store_mode { STORE_DIR, STORE_REDIS, STORE_BOTH, STORE_S3 };

struct worker_cfg {
	char	 *redis_url;
	char	 *queue;
	char	 *comfyui_url;
	char	 *worker_id;
	char	 *pool;
	long long slots;
	long long max_inflight;
	long long vram_reserve_mb;
	long long gpu_device;
	long long lease_ms;
	long long heartbeat_ms;
	long long worker_ttl_ms;
	long long job_timeout_s;
	long long silence_timeout_s;
	long long ws_ping_s;
	long long ws_pong_timeout_s;
	long long http_timeout_ms;
	long long progress_min_ms;
	long long retry_base_ms;
	long long retry_max_ms;
	long long max_resubmits;
	char	 *output_dir;
	int	  store;
	long long blob_ttl_s;
	char	 *s3_endpoint;
	char	 *s3_region;
	char	 *s3_bucket;
	char	 *s3_prefix;
	char	 *s3_access_key;
	char	 *s3_secret_key;
	char	 *s3_secret_key_file;
	int	  s3_path_style;
	long long s3_presign_s;
	long long s3_retries;
	long long s3_part_mb;
	long long s3_timeout_ms;
	long long max_output_bytes;
	long long max_output_pixels;
	long long output_timeout_ms;
	int	  output_fsync;
	long long drain_grace_s;
	long long block_timeout_s;
	char	 *start_cmd;
	long long start_timeout_s;
	long long health_interval_ms;
	char	 *workflows_dir;
	char	 *controlnet_models;
	double	  lora_weight_scale;
	long long input_max_bytes;
	long long input_timeout_ms;
	int	  allow_private_urls;
	long long threads;
	long long prefetch;
	int	  raw_graphs; /* 0 allow, 1 deny */
	char	 *graph_files;
	int	  model_aware;
	long long model_max_wait_ms;
	long long model_max_lead;
	int	  log_level;
	int	  log_format;

	struct rq_tls_cfg tls; /* a rediss:// URL's tls-* settings */
};

/* main.c */
extern const struct cfg_table worker_cfg_table;

#endif
