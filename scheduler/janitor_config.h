/*
 * comfyq-janitor: puts back what crashed workers leave (expired leases,
 * orphaned slots), promotes due jobs, trims the streams, expires old job
 * records, marks dead workers gone, tells waiting jobs their place, and
 * deletes old files in ComfyUI's folders. Every duty is bounded per tick and
 * idempotent, so any number of janitors can run (docs/design.md §7).
 * This header holds its settings (defined by janitor_config.c).
 *
 *   janitor.c         main, signals, the tick, the cleanup pass
 *   janitor_config.c  the settings table (--help prints it)
 *   janitor_sweep.c   the Redis duties (lua/reap.lua, lua/janitor.lua)
 *   janitor_clean.c   the file walker;  janitor_inuse.c  files to keep
 */
#ifndef COMFYQ_JANITOR_CONFIG_H
#define COMFYQ_JANITOR_CONFIG_H

#include "config.h"
#include "rq_tls.h"

struct janitor_cfg {
	char	 *redis_url;
	char	 *queue;
	long long redis_timeout_ms;
	long long tick_ms;
	long long batch;
	long long max_reclaims;
	long long crash_losses;
	long long stall_after_ms;
	long long grace_ms;
	long long events_max_len;
	long long events_max_age_s;
	long long refunds_max_age_s;
	long long trim_batch;
	long long retention_s;
	long long worker_dead_ms;
	long long worker_forget_s;
	long long status_top;
	long long status_interval_ms;
	char	 *clean_dirs;
	long long clean_age_s[3]; /* per enum clean_kind */
	long long clean_interval_s;
	long long clean_batch;
	char	 *clean_host;
	int	  log_level;
	int	  log_format;

	struct rq_tls_cfg tls; /* a rediss:// URL's tls-* settings */
};

extern const struct cfg_table janitor_cfg_table;

long long janitor_stall_ms(const struct janitor_cfg *);

#endif
