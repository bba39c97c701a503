/*
 * Duration histograms (see sched_metrics_dur.h).
 *
 * Times are the stream ids' ms (Redis's clock). Queue wait = a job's first
 * `started` (attempt 1) minus its enqueue time, which its id carries (8
 * base36 digits of ms). Run = a terminal event minus the job's latest
 * `started` this process read, by outcome; a `requeued` or `retrying` ends
 * the attempt without a run time. The latest start of at most
 * DUR_JOBS_MAX jobs is kept (the oldest goes first when full): a job that
 * started before this process did, or fell out, gets no run time.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "sched_metrics_dur.h"
#include "xmalloc.h"

#define DUR_JOBS_MAX	8192
#define DUR_JOB_BUCKETS 4096

static const double hist_le[HIST_NLE] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
	0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600 };

static const char *const dur_outcomes[] = { "succeeded", "failed", "canceled" };
#define DUR_NOUTCOMES (sizeof dur_outcomes / sizeof dur_outcomes[0])

struct dur_job {
	char		jid[65];
	long long	started_ms;
	struct dur_job *chain;
	TAILQ_ENTRY(dur_job) age;
};

struct durations {
	struct hist	wait, run[DUR_NOUTCOMES];
	struct dur_job *jobs[DUR_JOB_BUCKETS];
	TAILQ_HEAD(, dur_job) jobs_age;
	size_t njobs;
};

void
hist_add(struct hist *h, double v)
{
	size_t i;

	for (i = 0; i < HIST_NLE; i++)
		if (v <= hist_le[i]) {
			h->bucket[i]++;
			break;
		}
	h->count++;
	h->sum += v;
}

void
hist_put(struct evbuffer *b, const char *name, const char *label,
    const struct hist *h)
{
	unsigned long long cum = 0;
	int		   ll = (int)strlen(label) - 1; /* without the comma */
	size_t		   i;

	for (i = 0; i < HIST_NLE; i++) {
		cum += h->bucket[i];
		evbuffer_add_printf(b, "%s_bucket{%sle=\"%g\"} %llu\n", name,
		    label, hist_le[i], cum);
	}
	evbuffer_add_printf(
	    b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, label, h->count);
	if (ll > 0) {
		evbuffer_add_printf(
		    b, "%s_sum{%.*s} %.6f\n", name, ll, label, h->sum);
		evbuffer_add_printf(
		    b, "%s_count{%.*s} %llu\n", name, ll, label, h->count);
	} else {
		evbuffer_add_printf(b, "%s_sum %.6f\n", name, h->sum);
		evbuffer_add_printf(b, "%s_count %llu\n", name, h->count);
	}
}

static struct dur_job **
dur_find(struct durations *d, const char *jid)
{
	struct dur_job **p;
	unsigned	 h = 5381;
	const char	*s;

	for (s = jid; *s != '\0'; s++)
		h = h * 33 + (unsigned char)*s;
	p = &d->jobs[h % DUR_JOB_BUCKETS];
	while (*p != NULL && strcmp((*p)->jid, jid) != 0)
		p = &(*p)->chain;
	return (p);
}

static void
dur_remove(struct durations *d, struct dur_job **p)
{
	struct dur_job *j = *p;

	*p = j->chain;
	TAILQ_REMOVE(&d->jobs_age, j, age);
	d->njobs--;
	free(j);
}

static void
dur_started(struct durations *d, const char *jid, long long ms)
{
	struct dur_job **p = dur_find(d, jid), *j;

	if (*p != NULL)
		dur_remove(d, p);
	if (d->njobs == DUR_JOBS_MAX)
		dur_remove(d, dur_find(d, TAILQ_FIRST(&d->jobs_age)->jid));
	j = xcalloc(1, sizeof *j);
	snprintf(j->jid, sizeof j->jid, "%s", jid);
	j->started_ms = ms;
	p = dur_find(d, jid);
	*p = j;
	TAILQ_INSERT_TAIL(&d->jobs_age, j, age);
	d->njobs++;
}

/* The enqueue time a job id carries (its first 8 base36 digits), or -1. */
static long long
dur_enqueued_ms(const char *jid)
{
	long long ms = 0;
	int	  i, v;

	for (i = 0; i < 8; i++) {
		if (jid[i] >= '0' && jid[i] <= '9')
			v = jid[i] - '0';
		else if (jid[i] >= 'a' && jid[i] <= 'z')
			v = jid[i] - 'a' + 10;
		else
			return (-1);
		ms = ms * 36 + v;
	}
	return (ms);
}

void
durations_event(struct durations *d, const char *type, const char *jid,
    long long ms, long long attempt)
{
	struct dur_job **p;
	long long	 t;
	size_t		 i;

	if (strlen(jid) >= sizeof((struct dur_job *)0)->jid)
		return;
	if (strcmp(type, "started") == 0) {
		if (attempt == 1 && (t = dur_enqueued_ms(jid)) >= 0 && ms >= t)
			hist_add(&d->wait, (double)(ms - t) / 1000.0);
		dur_started(d, jid, ms);
		return;
	}
	if (strcmp(type, "requeued") == 0 || strcmp(type, "retrying") == 0) {
		if (*(p = dur_find(d, jid)) != NULL)
			dur_remove(d, p);
		return;
	}
	for (i = 0; i < DUR_NOUTCOMES; i++)
		if (strcmp(type, dur_outcomes[i]) == 0)
			break;
	if (i == DUR_NOUTCOMES || *(p = dur_find(d, jid)) == NULL)
		return;
	if (ms >= (*p)->started_ms)
		hist_add(&d->run[i], (double)(ms - (*p)->started_ms) / 1000.0);
	dur_remove(d, p);
}

void
durations_put(struct evbuffer *b, const struct durations *d)
{
	char   label[64];
	size_t i;

	evbuffer_add_printf(b,
	    "# HELP comfyq_queue_wait_seconds Enqueue to first start, from "
	    "the events this process read.\n"
	    "# TYPE comfyq_queue_wait_seconds histogram\n");
	hist_put(b, "comfyq_queue_wait_seconds", "", &d->wait);
	evbuffer_add_printf(b,
	    "# HELP comfyq_run_seconds Latest start to the end, by outcome.\n"
	    "# TYPE comfyq_run_seconds histogram\n");
	for (i = 0; i < DUR_NOUTCOMES; i++) {
		snprintf(
		    label, sizeof label, "outcome=\"%s\",", dur_outcomes[i]);
		hist_put(b, "comfyq_run_seconds", label, &d->run[i]);
	}
}

struct durations *
durations_new(void)
{
	struct durations *d = xcalloc(1, sizeof *d);

	TAILQ_INIT(&d->jobs_age);
	return (d);
}

void
durations_free(struct durations *d)
{
	struct dur_job *j;

	while ((j = TAILQ_FIRST(&d->jobs_age)) != NULL) {
		TAILQ_REMOVE(&d->jobs_age, j, age);
		free(j);
	}
	free(d);
}
