/*
 * A stand-in worker and child processes for the tests and the benchmark
 * that need real processes: the stand-in registers, claims jobs with a
 * lease and renews them by heartbeat, like comfyq-worker does, until it is
 * killed; proc_* start a program with its stderr in a file and stop it.
 */
#ifndef COMFYQ_STANDIN_H
#define COMFYQ_STANDIN_H

#include <sys/types.h>

#include <stddef.h>

#define STANDIN_JOBS_MAX 16

struct standin {
	pid_t pid;
	int   njobs;
	char  jid[STANDIN_JOBS_MAX][64];
	char  fence[STANDIN_JOBS_MAX][32];
};

struct standin_opts {
	const char *url;    /* Redis */
	const char *prefix; /* cq:{<queue>}: */
	const char *wid;
	const char *pool;
	const char *host;
	int	    njobs;    /* jobs to claim before heartbeating */
	int	    lease_ms; /* claim and heartbeat lease */
	int	    beat_ms;  /* heartbeat period */
};

int standin_start(
    struct standin *s, const struct standin_opts *o, char *err, size_t errlen);
void  standin_kill(struct standin *s);
pid_t proc_start(const char *const argv[], const char *log);
int   proc_stop(pid_t pid, int sig, int timeout_ms);
int   proc_gone(pid_t pid);

#endif
