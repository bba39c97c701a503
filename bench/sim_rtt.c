/*
 * sim_rtt: the round trip of a no-op prompt through comfyq-sim, and the
 * sim's own CPU for it. Starts the sim (--sim PATH, or COMFYQ_SIM) on a
 * free port with no simulated delays, opens a WebSocket as a worker does,
 * then N times: POST /prompt (EmptyImage 8x8 -> PreviewImage, a new
 * colour each time so it really runs, or the same graph with --cached)
 * and wait for `executing` {node: null} of that prompt. The sim's CPU
 * comes from /proc/<pid>/schedstat (ns; /proc/<pid>/stat ticks where that
 * is missing), read before and after the measured prompts.
 *
 *   build a release tree first: the sanitizers cost more than the sim
 *   cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release
 *   cmake --build build-rel --target comfyq-sim bench_sim_rtt
 *   build-rel/bin/bench_sim_rtt --sim build-rel/bin/comfyq-sim -n 5000
 *
 * --dir puts the sim's output/temp folders elsewhere (/dev/shm: no disk
 * file system in the figure). The split into user and system time shows
 * how much is the kernel creating the PreviewImage file.
 */
#define _GNU_SOURCE /* memmem, nftw */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "util.h"
#include "ws.h"
#include "xmalloc.h"

struct bench {
	struct event_base *base;
	struct ws	  *ws;
	int		   open, closed, done;
	char		   want[64];
};

static void
b_open(struct ws *ws, void *arg)
{
	struct bench *b = arg;

	(void)ws;
	b->open = 1;
	event_base_loopbreak(b->base);
}

/* Cheap test for `executing` with node null and our prompt id. */
static void
b_text(struct ws *ws, const char *s, size_t n, void *arg)
{
	static const char pre[] = "{\"type\":\"executing\"";

	struct bench *b = arg;
	char	      pat[128];

	(void)ws;
	if (n < sizeof pre || memcmp(s, pre, sizeof pre - 1) != 0)
		return;
	snprintf(
	    pat, sizeof pat, "\"node\":null,\"prompt_id\":\"%s\"", b->want);
	if (memmem(s, n, pat, strlen(pat)) != NULL) {
		b->done = 1;
		event_base_loopbreak(b->base);
	}
}

static void
b_close(struct ws *ws, const char *reason, void *arg)
{
	struct bench *b = arg;

	(void)ws;
	fprintf(stderr, "sim_rtt: websocket closed: %s\n", reason);
	b->closed = 1;
	event_base_loopbreak(b->base);
}

static size_t
b_sink(char *p, size_t sz, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return (sz * n);
}

/* The sim's user and system CPU so far, in ns (clock-tick resolution). */
static int
cpu_split(pid_t pid, long long *user, long long *sys)
{
	char		   path[64], buf[1024], *p;
	unsigned long long ut, st;
	long long	   tick = 1000000000LL / sysconf(_SC_CLK_TCK);
	FILE		  *f;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL ||
	    fgets(buf, sizeof buf, f) == NULL) {
		if (f != NULL)
			fclose(f);
		return (-1);
	}
	fclose(f);
	/* after "(comm)": state is field 3, utime 14, stime 15 */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2,
		"%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
		&st) != 2)
		return (-1);
	*user = (long long)ut * tick;
	*sys = (long long)st * tick;
	return (0);
}

/* The sim's CPU time so far, in ns: schedstat where there is one. */
static long long
cpu_ns(pid_t pid)
{
	unsigned long long ns;
	long long	   u, s;
	char		   path[64];
	FILE		  *f;
	int		   k;

	snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
	if ((f = fopen(path, "r")) != NULL) {
		k = fscanf(f, "%llu", &ns);
		fclose(f);
		if (k == 1 && ns > 0)
			return ((long long)ns);
	}
	return (cpu_split(pid, &u, &s) == 0 ? u + s : -1);
}

static int
b_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return (0);
}

static pid_t
start_sim(const char *bin, const char *dir, int *port)
{
	char  pf[700], *s;
	pid_t pid;
	int   i;

	snprintf(pf, sizeof pf, "%s/port", dir);
	if ((pid = fork()) == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(bin, bin, "--port", "0", "--port-file", pf,
		    "--base-directory", dir, "--step-ms", "0",
		    "--model-load-ms", "0", "--log-level", "warning",
		    (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 500; i++) {
		char err[128];

		if ((s = file_slurp(pf, 64, NULL, err, sizeof err)) != NULL &&
		    strchr(s, '\n') != NULL) {
			*port = atoi(s);
			free(s);
			return (pid);
		}
		free(s);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	return (-1);
}

/* One prompt, to completion. Returns 0 or -1. */
static int
one(struct bench *b, CURL *c, const char *url, int i, int cached)
{
	char	  body[1024];
	long	  code = 0;
	long long end;

	snprintf(b->want, sizeof b->want, "b%d", i);
	snprintf(body, sizeof body,
	    "{\"client_id\":\"bench\",\"prompt_id\":\"%s\",\"prompt\":{"
	    "\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":{\"width\":8,"
	    "\"height\":8,\"batch_size\":1,\"color\":%d}},"
	    "\"2\":{\"class_type\":\"PreviewImage\",\"inputs\":{\"images\":"
	    "[\"1\",0]}}}}",
	    b->want, cached ? 0 : i % 0xffffff);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	if (curl_easy_perform(c) != CURLE_OK ||
	    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK ||
	    code != 200) {
		fprintf(stderr, "sim_rtt: POST /prompt failed (%ld)\n", code);
		return (-1);
	}
	b->done = 0;
	end = clock_mono_ms() + 10000;
	while (!b->done && !b->closed && clock_mono_ms() < end)
		event_base_loop(b->base, EVLOOP_ONCE);
	return (b->done ? 0 : -1);
}

int
main(int argc, char **argv)
{
	static const struct ws_cb cb = { b_open, b_text, NULL, b_close };
	const char		 *bin = getenv("COMFYQ_SIM");
	struct bench		  b;
	struct curl_slist	 *h = NULL;
	char			  dir[600], url[256], wurl[256], err[256];
	const char		 *tmp = "/tmp";
	long long t0, t1, c0, c1, u0 = 0, s0 = 0, u1 = 0, s1 = 0;
	int	  n = 2000, warm = 200, cached = 0, port, i, rc = 1;
	pid_t	  pid;
	CURL	 *c = NULL;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--sim") == 0 && i + 1 < argc)
			bin = argv[++i];
		else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			n = atoi(argv[++i]);
		else if (strcmp(argv[i], "--cached") == 0)
			cached = 1;
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			tmp = argv[++i];
		else {
			fprintf(stderr,
			    "usage: sim_rtt [--sim PATH] [-n N] "
			    "[--cached] [--dir TMPDIR]\n");
			return (2);
		}
	}
	snprintf(dir, sizeof dir, "%s/comfyq-simrtt.XXXXXX", tmp);
	if (bin == NULL || n <= 0 || mkdtemp(dir) == NULL) {
		fprintf(stderr, "sim_rtt: give --sim PATH (or COMFYQ_SIM)\n");
		return (2);
	}
	if ((pid = start_sim(bin, dir, &port)) == -1) {
		fprintf(stderr, "sim_rtt: %s did not start\n", bin);
		return (1);
	}
	memset(&b, 0, sizeof b);
	b.base = event_base_new();
	snprintf(
	    wurl, sizeof wurl, "ws://127.0.0.1:%d/ws?clientId=bench", port);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/prompt", port);
	if ((b.ws = ws_connect(b.base, wurl, NULL, &cb, &b, err, sizeof err)) ==
	    NULL)
		goto out;
	while (!b.open && !b.closed)
		event_base_loop(b.base, EVLOOP_ONCE);
	c = curl_easy_init();
	h = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, b_sink);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	for (i = 0; i < warm; i++)
		if (one(&b, c, url, i, cached) == -1)
			goto out;
	c0 = cpu_ns(pid);
	cpu_split(pid, &u0, &s0);
	t0 = clock_mono_ms();
	for (i = warm; i < warm + n; i++)
		if (one(&b, c, url, i, cached) == -1)
			goto out;
	t1 = clock_mono_ms();
	c1 = cpu_ns(pid);
	cpu_split(pid, &u1, &s1);
	printf("sim_rtt: %d prompts (%s), round trip %.1f us, sim CPU %.1f "
	       "us per prompt\n",
	    n,
	    cached ? "identical graph, all cached"
		   : "EmptyImage 8x8 -> PreviewImage",
	    (double)(t1 - t0) * 1000.0 / n,
	    c0 >= 0 && c1 >= 0 ? (double)(c1 - c0) / 1000.0 / n : -1.0);
	printf("sim_rtt: of which user %.1f us, system %.1f us (the kernel: "
	       "sockets and the output file)\n",
	    (double)(u1 - u0) / 1000.0 / n, (double)(s1 - s0) / 1000.0 / n);
	rc = 0;
out:
	curl_slist_free_all(h);
	if (c != NULL)
		curl_easy_cleanup(c);
	ws_free(b.ws);
	event_base_free(b.base);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	nftw(dir, b_rm, 16, FTW_DEPTH | FTW_PHYS);
	return (rc);
}
