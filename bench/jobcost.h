/*
 * bench_sched's job-cost figure: what Redis over TLS costs a job against
 * plain TCP (see jobcost.c).
 */
#ifndef COMFYQ_JOBCOST_H
#define COMFYQ_JOBCOST_H

struct jobcost {
	const char *tcp_url;	/* redis:// */
	const char *tls_url;	/* rediss:// to the same server */
	const char *sim_url;	/* a running comfyq-sim */
	const char *worker_bin; /* comfyq-worker */
	const char *workflows;	/* its --workflows-dir */
	const char *dir;	/* logs and outputs go under it */
	long long   jobs;	/* per transport, after a warm-up */
};

void jobcost_run(const struct jobcost *jc);

#endif
