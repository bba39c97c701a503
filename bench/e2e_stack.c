/*
 * The processes of one measure: comfyq-sims on free ports, a comfyq-worker
 * in front of each (its own pool: each sim is one GPU), maybe a
 * comfyq-janitor, all on a queue of their own and with their files under
 * the bench's folder (on /dev/shm where it is writable: e2e_main.c).
 * Workers run with output-fsync off (the figures are about the queue, not
 * the disk) and log warnings only. A worker counts as
 * started once its record says health ok. stack_stop ends them all (a
 * worker gets SIGTERM twice: the second hands back what it runs at once)
 * and removes their files (a throughput run leaves tens of thousands).
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchhttp.h"
#include "benchlib.h"
#include "e2e.h"
#include "standin.h"
#include "util.h"

void
stack_init(struct stack *s, struct e2e *e, const char *what)
{
	memset(s, 0, sizeof *s);
	s->e = e;
	snprintf(s->queue, sizeof s->queue, "%s%d", what, e->seq++);
	snprintf(s->prefix, sizeof s->prefix, "cq:{%s}:", s->queue);
	snprintf(s->out, sizeof s->out, "%s/%s-out", e->dir, s->queue);
}

/* Starts n sims (step and load times in ms) and waits for their ports. */
void
stack_sims(struct stack *s, int n, const char *step_ms, const char *load_ms)
{
	char	    pf[256], base[256], log[256], port[16];
	const char *argv[] = { SIM_BIN, "--port", "0", "--port-file", pf,
		"--base-directory", base, "--step-ms", step_ms,
		"--model-load-ms", load_ms, "--log-level", "warning", NULL };
	long long   start;
	FILE	   *f;
	int	    i;

	for (i = 0; i < n; i++) {
		snprintf(
		    pf, sizeof pf, "%s/%s-sim%d.port", s->e->dir, s->queue, i);
		snprintf(
		    base, sizeof base, "%s/%s-sim%d", s->e->dir, s->queue, i);
		snprintf(
		    log, sizeof log, "%s/%s-sim%d.log", s->e->dir, s->queue, i);
		s->sim[i] = proc_start(argv, log);
		start = clock_mono_ms();
		port[0] = '\0';
		while ((f = fopen(pf, "r")) == NULL ||
		    fgets(port, sizeof port, f) == NULL) {
			if (f != NULL)
				fclose(f);
			if (proc_gone(s->sim[i]) ||
			    clock_mono_ms() - start > 20000)
				bench_die(log, "comfyq-sim did not start");
			bench_sleep_ms(5);
		}
		fclose(f);
		s->port[i] = atoi(port);
		s->n = i + 1;
	}
}

/* Starts worker i before sim i with these slots and extra arguments
 * (NULL-terminated, or NULL), and waits until its record says ok. */
void
stack_worker(
    struct stack *s, int i, const char *slots, const char *const *extra)
{
	char	    url[64], pool[96], log[256], key[RQ_PREFIX_MAX + 96];
	const char *argv[48];
	long long   start = clock_mono_ms();
	redisReply *r;
	int	    k = 0, ok = 0;

	snprintf(url, sizeof url, "http://127.0.0.1:%d", s->port[i]);
	snprintf(s->wid[i], sizeof s->wid[i], "%s-w%d", s->queue, i);
	snprintf(pool, sizeof pool, "%s-g%d", s->queue, i);
	snprintf(log, sizeof log, "%s/%s-w%d.log", s->e->dir, s->queue, i);
	argv[k++] = WORKER_BIN;
	argv[k++] = "--redis-url";
	argv[k++] = s->e->url;
	argv[k++] = "--queue";
	argv[k++] = s->queue;
	argv[k++] = "--comfyui-url";
	argv[k++] = url;
	argv[k++] = "--worker-id";
	argv[k++] = s->wid[i];
	argv[k++] = "--pool";
	argv[k++] = pool;
	argv[k++] = "--slots";
	argv[k++] = slots;
	argv[k++] = "--output-dir";
	argv[k++] = s->out;
	argv[k++] = "--workflows-dir";
	argv[k++] = WORKFLOWS_DIR;
	argv[k++] = "--output-fsync";
	argv[k++] = "false";
	argv[k++] = "--log-level";
	argv[k++] = "warning";
	while (extra != NULL && *extra != NULL && k < 46)
		argv[k++] = *extra++;
	argv[k] = NULL;
	s->wk[i] = proc_start(argv, log);
	snprintf(key, sizeof key, "%sworker:%s", s->prefix, s->wid[i]);
	while (!ok) {
		if (proc_gone(s->wk[i]) || clock_mono_ms() - start > 20000)
			bench_die(log, "comfyq-worker did not come up");
		bench_sleep_ms(10);
		if ((r = redisCommand(s->e->c, "HGET %s health", key)) == NULL)
			bench_die("HGET health", s->e->c->errstr);
		ok = r->type == REDIS_REPLY_STRING && strcmp(r->str, "ok") == 0;
		freeReplyObject(r);
	}
}

void
stack_janitor(struct stack *s, const char *tick_ms)
{
	char	    log[256];
	const char *argv[] = { JANITOR_BIN, "--redis-url", s->e->url, "--queue",
		s->queue, "--tick-ms", tick_ms, "--log-level", "warning",
		NULL };

	snprintf(log, sizeof log, "%s/%s-janitor.log", s->e->dir, s->queue);
	s->janitor = proc_start(argv, log);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	remove(path);
	return (0);
}

/* Ends every process of the stack and removes its outputs. */
void
stack_stop(struct stack *s)
{
	char path[256];
	int  i;

	/* a second SIGTERM hands a draining worker's jobs back at once */
	for (i = 0; i < E2E_WORKERS_MAX; i++)
		if (s->wk[i] > 0)
			kill(s->wk[i], SIGTERM);
	bench_sleep_ms(50);
	for (i = 0; i < E2E_WORKERS_MAX; i++)
		if (s->wk[i] > 0)
			proc_stop(s->wk[i], SIGTERM, 3000);
	if (s->janitor > 0)
		proc_stop(s->janitor, SIGTERM, 3000);
	for (i = 0; i < s->n; i++) {
		proc_stop(s->sim[i], SIGTERM, 3000);
		snprintf(
		    path, sizeof path, "%s/%s-sim%d", s->e->dir, s->queue, i);
		nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
	nftw(s->out, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	memset(s->wk, 0, sizeof s->wk);
	s->janitor = 0;
	s->n = 0;
}

/* Sim i's GET /sim/stats, parsed; the caller frees it. */
cJSON *
sim_stats(struct stack *s, int i)
{
	static const char req[] =
	    "GET /sim/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	char   body[BODY_MAX];
	cJSON *j;
	int    fd;

	if ((fd = http_connect(s->port[i])) == -1)
		bench_die("comfyq-sim", "refused a connection");
	if (http_call(fd, req, body, sizeof body) != 200)
		bench_die("GET /sim/stats", body);
	close(fd);
	if ((j = cJSON_Parse(body)) == NULL)
		bench_die("GET /sim/stats", "not JSON");
	return (j);
}

long long
stat_ll(const cJSON *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	if (!cJSON_IsNumber(v))
		bench_die("GET /sim/stats: no number", key);
	return ((long long)v->valuedouble);
}

/* One number of sim i's GET /sim/stats. */
long long
sim_stat(struct stack *s, int i, const char *key)
{
	cJSON	 *j = sim_stats(s, i);
	long long n = stat_ll(j, key);

	cJSON_Delete(j);
	return (n);
}
