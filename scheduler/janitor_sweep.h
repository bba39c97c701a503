/*
 * The janitor's Redis duties, one tick at a time: reap (leases, due jobs,
 * slots), trim, expire, workers_gone and queue_status, each one bounded
 * function call; the active jobs' files for the cleanup; the cleanup's
 * counters into the stats hash. One blocking connection with a timeout,
 * reconnected with backoff when it fails.
 */
#ifndef COMFYQ_JANITOR_SWEEP_H
#define COMFYQ_JANITOR_SWEEP_H

struct janitor_cfg;
struct inuse;

struct sweep_result {
	long long requeued, lost, promoted, slots_freed, buried;
	long long holding; /* 1: the stall guard holds reclaims back */
	long long events_trimmed, refunds_trimmed, expired;
	long long workers_gone, workers_forgotten;
	long long status_events;
	long long freed_files, freed_bytes, freed_dirs, kept;
};

struct sweep;

struct sweep *sweep_new(const struct janitor_cfg *cfg, const char *prefix);
void	      sweep_free(struct sweep *);
int	      sweep_run(struct sweep *, struct sweep_result *);
int	      sweep_inuse(struct sweep *, struct inuse *);
void	      sweep_count_clean(struct sweep *, const struct sweep_result *);

#endif
