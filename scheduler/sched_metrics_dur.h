/*
 * Duration histograms for /metrics: the histogram itself (fixed buckets
 * from 5 ms to an hour) and the job durations read from the events stream:
 * queue wait and run time (the rules are in sched_metrics_dur.c).
 */
#ifndef COMFYQ_SCHED_METRICS_DUR_H
#define COMFYQ_SCHED_METRICS_DUR_H

#define HIST_NLE 18

struct evbuffer;

struct hist {
	unsigned long long bucket[HIST_NLE]; /* not cumulative */
	unsigned long long count;
	double		   sum;
};

void hist_add(struct hist *h, double seconds);
/* Writes h's _bucket, _sum and _count lines; label is "" or one or more
 * `name="value",` (the trailing comma included). */
void hist_put(struct evbuffer *b, const char *name, const char *label,
    const struct hist *h);

struct durations;

struct durations *durations_new(void);
void		  durations_free(struct durations *d);
/* One events stream entry (see metrics_event). */
void durations_event(struct durations *d, const char *type, const char *jid,
    long long ms, long long attempt);
/* comfyq_queue_wait_seconds and comfyq_run_seconds, HELP and TYPE too. */
void durations_put(struct evbuffer *b, const struct durations *d);

#endif
