/*
 * The janitor's settings: one table drives parsing, bounds, --help, the
 * startup dump and SIGHUP (entries marked CFG_RELOAD). Each is COMFYQ_<NAME>
 * in the environment, `name = value` in the --config file, or --name VALUE.
 * Durations carry their unit in the name (-ms, -s).
 */
#include <stddef.h>

#include "janitor_config.h"

#define OFF(f) offsetof(struct janitor_cfg, f)

static const struct cfg_entry janitor_entries[] = {
	CFG_REDIS_ENTRIES(struct janitor_cfg, redis_url, queue, tls),
	{ "redis-timeout-ms", CFG_INT, OFF(redis_timeout_ms), "5000",
	    .min = 100, .max = 600000,
	    .text = "Connect and command timeout; a call that takes longer "
		    "drops the connection, and the next tick reconnects." },
	{ "tick-ms", CFG_INT, OFF(tick_ms), "1000", .min = 10, .max = 60000,
	    .flags = CFG_RELOAD,
	    .text = "Time between two ticks; every duty runs once a tick." },
	{ "batch", CFG_INT, OFF(batch), "100", .min = 1, .max = 100000,
	    .flags = CFG_RELOAD,
	    .text = "Most leases, due jobs, slot holders, records and workers "
		    "one duty handles per tick." },
	{ "max-reclaims", CFG_INT, OFF(max_reclaims), "3", .min = 0, .max = 100,
	    .flags = CFG_RELOAD,
	    .text = "Lease losses a job survives; one more ends it worker_lost "
		    "with a refund." },
	{ "crash-losses", CFG_INT, OFF(crash_losses), "2", .min = 0, .max = 100,
	    .flags = CFG_RELOAD,
	    .text =
		"Lease losses with no heartbeat after the claim (the worker "
		"died at once: a job that may crash workers) that end a job "
		"failed/internal with a refund; 0: never." },
	{ "stall-after-ms", CFG_INT, OFF(stall_after_ms), "5000", .min = 0,
	    .max = 3600000, .flags = CFG_RELOAD,
	    .text = "A gap between two reaps longer than this (at least 3 "
		    "ticks) is a stall of Redis or the janitors: expired "
		    "leases wait grace-ms. 0 turns the guard off." },
	{ "grace-ms", CFG_INT, OFF(grace_ms), "10000", .min = 0, .max = 3600000,
	    .flags = CFG_RELOAD,
	    .text = "After a stall, time given to workers' heartbeats before "
		    "leases are reclaimed: one heartbeat period." },
	{ "events-max-len", CFG_INT, OFF(events_max_len), "100000", .min = 0,
	    .max = 1000000000, .flags = CFG_RELOAD,
	    .text = "Entries kept in the events stream (about: whole stream "
		    "nodes go); 0: no length limit." },
	{ "events-max-age-s", CFG_INT, OFF(events_max_age_s), "86400", .min = 0,
	    .max = 31536000, .flags = CFG_RELOAD,
	    .text = "Events older than this go; 0: no age limit." },
	{ "refunds-max-age-s", CFG_INT, OFF(refunds_max_age_s), "604800",
	    .min = 0, .max = 31536000, .flags = CFG_RELOAD,
	    .text = "Refund entries acknowledged by every consumer group go "
		    "after this; unacknowledged ones are never trimmed." },
	{ "trim-batch", CFG_INT, OFF(trim_batch), "10000", .min = 1000,
	    .max = 1000000, .flags = CFG_RELOAD,
	    .text = "Most stream entries trimmed per stream per tick." },
	{ "retention-s", CFG_INT, OFF(retention_s), "604800", .min = 60,
	    .max = 315360000, .flags = CFG_RELOAD,
	    .text = "Records of finished jobs are deleted this long after "
		    "they ended." },
	{ "worker-dead-ms", CFG_INT, OFF(worker_dead_ms), "30000", .min = 1000,
	    .max = 86400000, .flags = CFG_RELOAD,
	    .text = "A worker without a heartbeat this long is marked gone." },
	{ "worker-forget-s", CFG_INT, OFF(worker_forget_s), "86400", .min = 60,
	    .max = 31536000, .flags = CFG_RELOAD,
	    .text = "A gone worker leaves `comfyq workers` after this." },
	{ "status-top", CFG_INT, OFF(status_top), "50", .min = 16, .max = 1000,
	    .flags = CFG_RELOAD,
	    .text = "Jobs at the head of each lane that get queue_status "
		    "events and whose records are checked." },
	{ "status-interval-ms", CFG_INT, OFF(status_interval_ms), "1000",
	    .min = 0, .max = 3600000, .flags = CFG_RELOAD,
	    .text = "Least time between two queue_status events of one job; "
		    "0: no queue_status events." },
	{ "clean-dirs", CFG_STR, OFF(clean_dirs), "", .max = 8192,
	    .text =
		"ComfyUI folders to clean on this host, comma-separated "
		"KIND=PATH with KIND output, temp or input "
		"(output=/ComfyUI/output,temp=/ComfyUI/temp,input=/ComfyUI/input); empty: no file cleanup." },
	{ "clean-output-age-s", CFG_INT, OFF(clean_age_s[0]), "86400",
	    .min = 60, .max = 31536000, .flags = CFG_RELOAD,
	    .text = "Files in output folders older than this go." },
	{ "clean-temp-age-s", CFG_INT, OFF(clean_age_s[1]), "3600", .min = 60,
	    .max = 31536000, .flags = CFG_RELOAD,
	    .text = "Files in temp folders older than this go." },
	{ "clean-input-age-s", CFG_INT, OFF(clean_age_s[2]), "604800",
	    .min = 60, .max = 31536000, .flags = CFG_RELOAD,
	    .text = "Files in input folders older than this go." },
	{ "clean-interval-s", CFG_INT, OFF(clean_interval_s), "300", .min = 1,
	    .max = 86400, .flags = CFG_RELOAD,
	    .text = "Time from the end of one cleanup pass to the next." },
	{ "clean-batch", CFG_INT, OFF(clean_batch), "1000", .min = 1,
	    .max = 1000000, .flags = CFG_RELOAD,
	    .text = "Most directory entries the cleanup looks at per tick." },
	{ "clean-host", CFG_STR, OFF(clean_host), "", .max = 128,
	    .flags = CFG_RELOAD,
	    .text = "Keep only the files of jobs whose worker registered this "
		    "host (plus jobs whose worker record is gone); empty: "
		    "keep the files of every active job in the queue." },
	CFG_LOG_ENTRIES(struct janitor_cfg, log_level, log_format),
};

const struct cfg_table janitor_cfg_table = { "comfyq-janitor",
	"Reclaims expired leases and slots, promotes due jobs, trims streams, "
	"expires records,\nmarks dead workers gone and deletes old files in "
	"ComfyUI's folders.",
	janitor_entries, sizeof janitor_entries / sizeof janitor_entries[0],
	sizeof(struct janitor_cfg) };

/* The stall threshold in force: stall-after-ms, but never under 3 ticks. */
long long
janitor_stall_ms(const struct janitor_cfg *c)
{
	if (c->stall_after_ms == 0)
		return (0);
	return (c->stall_after_ms > 3 * c->tick_ms ? c->stall_after_ms
						   : 3 * c->tick_ms);
}
