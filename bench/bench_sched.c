/*
 * bench_sched: comfyq-scheduler's three performance figures (issue 11):
 *   submit    POST /v1/jobs -> 201 over one keep-alive connection, in us
 *             (p50/p90/p99/max); then DELETE of each (a queued cancel)
 *   sse rss   the scheduler's VmRSS before and with --clients SSE clients
 *             on /v1/events, and that every one of them gets an event
 *   terminal  from a job's terminal event (its stream id's ms, and the
 *             record's finished_ms) to the moment an SSE client following
 *             that job reads the terminal frame, in us (median/p90); both
 *             Redis times are whole ms, so each figure may read up to 1 ms
 *             high (the true moment is within the ms the id names)
 * It starts comfyq-scheduler (log-level warning, on a free port), and for
 * the terminal figure comfyq-sim (10 ms a sampler step) and a comfyq-worker
 * with 8 slots, on a private queue; the submits run before the worker is
 * up (no job runs while they are timed). The HTTP client is a plain socket:
 * requests are written whole, replies read by Content-Length, SSE bodies
 * de-chunked and split into frames.
 * Usage (a private redis-server, stopped afterwards):
 *   tests/lib/with-redis.sh --own build/bin/bench_sched [--submits N]
 *       [--clients N] [--jobs N]
 */
#define _GNU_SOURCE /* memmem */
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "benchlib.h"
#include "log.h"
#include "rq.h"
#include "standin.h"
#include "util.h"
#include "xmalloc.h"

#define SUBMITS_MAX 100000
#define CLIENTS_MAX 10000
#define JOBS_MAX    1000
#define RAW_MAX	    8192
#define BODY_MAX    16384

const char *bench_name = "bench_sched";

struct bench {
	const char   *url;
	char	      queue[64], prefix[RQ_PREFIX_MAX], dir[128];
	redisContext *c;
	int	      port;
	pid_t	      sched;
	long long     submits, clients, jobs;
};

/* An SSE connection: raw bytes, de-chunked body, the frames seen. */
struct sc {
	int	  fd, hdr, status, chunked, cst; /* cst: 0 size, 1 data, 2 CRLF */
	long long left;
	size_t	  rlen, blen;
	int	  frames, terminal;
	char	  term_id[48];
	char	  raw[RAW_MAX], body[BODY_MAX];
};

static const char sched_spec[] = "{\"workflow\":\"smoke_invert\"}";
static const char sched_run_spec[] =
    "{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"x\","
    "\"steps\":10}}";

static long long
wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x < y ? -1 : x > y);
}

static long long
pct(const long long *v, long long n, int p)
{
	long long i = (n * p) / 100;

	return (v[i < n ? i : n - 1]);
}

/* Sorts v and prints its percentiles in us. */
static void
print_us(const char *name, long long *v, long long n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_ll);
	printf("%-28s n %lld  min %lld  p50 %lld  p90 %lld  p99 %lld  max "
	       "%lld us\n",
	    name, n, v[0], pct(v, n, 50), pct(v, n, 90), pct(v, n, 99),
	    v[n - 1]);
}

/* A free TCP port on 127.0.0.1 (bound and released: good enough here). */
static int
free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t	   len = sizeof a;
	int		   fd, port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&a, sizeof a) == -1 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) == -1)
		bench_die("free port", strerror(errno));
	port = ntohs(a.sin_port);
	close(fd);
	return (port);
}

/* A blocking connection to the scheduler, Nagle off; -1 on failure. */
static int
http_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int		   fd, one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		bench_die("socket", strerror(errno));
	if (connect(fd, (struct sockaddr *)&a, sizeof a) == -1) {
		close(fd);
		return (-1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return (fd);
}

static void
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			bench_die("write", strerror(errno));
		}
		p += w;
		n -= (size_t)w;
	}
}

/*
 * One request on fd and its reply (Content-Length delimited); the status,
 * or -1 when the connection ended. The body goes to body (NUL-ended).
 */
static int
http_call(int fd, const char *req, char *body, size_t bodylen)
{
	char	buf[RAW_MAX];
	size_t	len = 0, hl, cl;
	char   *e, *p;
	ssize_t r;

	write_all(fd, req, strlen(req));
	for (;;) {
		if (len == sizeof buf - 1)
			bench_die("reply", "headers too long");
		if ((r = read(fd, buf + len, sizeof buf - 1 - len)) <= 0)
			return (-1);
		len += (size_t)r;
		buf[len] = '\0';
		if ((e = strstr(buf, "\r\n\r\n")) != NULL)
			break;
	}
	hl = (size_t)(e + 4 - buf);
	*e = '\0';
	cl = 0;
	for (p = buf; (p = strchr(p, '\n')) != NULL; p++)
		if (strncasecmp(p + 1, "content-length:", 15) == 0)
			cl = strtoul(p + 16, NULL, 10);
	if (cl >= bodylen || cl > sizeof buf - 1 - hl)
		bench_die("reply", "body too long");
	while (len < hl + cl) {
		if ((r = read(fd, buf + len, hl + cl - len)) <= 0)
			return (-1);
		len += (size_t)r;
	}
	memcpy(body, buf + hl, cl);
	body[cl] = '\0';
	return (atoi(buf + 9));
}

static void
req_post(char *req, size_t len, const char *spec)
{
	snprintf(req, len,
	    "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\n\r\n%s",
	    strlen(spec), spec);
}

/* The "id" of a 201 body. */
static void
body_id(const char *body, char *jid, size_t jidlen)
{
	const char *p = strstr(body, "\"id\":\"");
	size_t	    n;

	if (p == NULL)
		bench_die("no id in", body);
	p += 6;
	n = strcspn(p, "\"");
	if (n >= jidlen)
		bench_die("id too long", body);
	memcpy(jid, p, n);
	jid[n] = '\0';
}

static long long
vm_rss_kb(pid_t pid)
{
	char	  path[64], line[256];
	long long kb = -1;
	FILE	 *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		bench_die(path, strerror(errno));
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = atoll(line + 6);
	fclose(f);
	return (kb);
}

/* Opens an SSE request for path; 0, or -1 when the connect failed. */
static int
sc_open(struct sc *s, int port, const char *path)
{
	char req[256];

	memset(s, 0, offsetof(struct sc, raw));
	if ((s->fd = http_connect(port)) == -1)
		return (-1);
	snprintf(req, sizeof req,
	    "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: "
	    "text/event-stream\r\n\r\n",
	    path);
	write_all(s->fd, req, strlen(req));
	return (0);
}

static void
sc_close(struct sc *s)
{
	if (s->fd != -1)
		close(s->fd);
	s->fd = -1;
}

/* Splits the body into frames; notes the terminal one's id. */
static void
sc_frames(struct sc *s)
{
	char *end, *ev, *id;
	int   n;

	while ((end = memmem(s->body, s->blen, "\n\n", 2)) != NULL) {
		*end = '\0';
		ev = strstr(s->body, "event: ");
		id = strncmp(s->body, "id: ", 4) == 0 ? s->body + 4 : NULL;
		if (ev != NULL) {
			s->frames++;
			ev += 7;
			if (strncmp(ev, "succeeded", 9) == 0 ||
			    strncmp(ev, "failed", 6) == 0 ||
			    strncmp(ev, "canceled", 8) == 0) {
				s->terminal = 1;
				n = id != NULL ? (int)strcspn(id, "\n") : 0;
				snprintf(s->term_id, sizeof s->term_id, "%.*s",
				    n, id != NULL ? id : "");
			}
		}
		s->blen -= (size_t)(end + 2 - s->body);
		memmove(s->body, end + 2, s->blen);
	}
	if (s->blen == sizeof s->body)
		bench_die("sse", "a frame longer than the buffer");
}

static void
sc_take(struct sc *s, size_t n)
{
	if (n > sizeof s->body - s->blen)
		n = sizeof s->body - s->blen;
	memcpy(s->body + s->blen, s->raw, n);
	s->blen += n;
	s->rlen -= n;
	memmove(s->raw, s->raw + n, s->rlen);
	sc_frames(s);
}

/* Reads what is there; -1 at the end of the stream or an error. */
static int
sc_read(struct sc *s)
{
	char   *e;
	ssize_t r;
	size_t	n;

	if ((r = read(s->fd, s->raw + s->rlen, sizeof s->raw - 1 - s->rlen)) <=
	    0)
		return (r == -1 && errno == EAGAIN ? 0 : -1);
	s->rlen += (size_t)r;
	s->raw[s->rlen] = '\0';
	if (!s->hdr) {
		if ((e = strstr(s->raw, "\r\n\r\n")) == NULL)
			return (0);
		*e = '\0';
		s->hdr = 1;
		s->status = atoi(s->raw + 9);
		s->chunked = str_icontains(s->raw, "transfer-encoding: chunked");
		n = (size_t)(e + 4 - s->raw);
		s->rlen -= n;
		memmove(s->raw, s->raw + n, s->rlen);
	}
	while (s->rlen > 0) {
		if (!s->chunked)
			sc_take(s, s->rlen);
		else if (s->cst == 0) {
			if ((e = memmem(s->raw, s->rlen, "\r\n", 2)) == NULL)
				break;
			s->left = strtoll(s->raw, NULL, 16);
			if (s->left == 0)
				return (-1); /* the last chunk */
			n = (size_t)(e + 2 - s->raw);
			s->rlen -= n;
			memmove(s->raw, s->raw + n, s->rlen);
			s->cst = 1;
		} else if (s->cst == 1) {
			n = s->rlen < (size_t)s->left ? s->rlen : (size_t)s->left;
			sc_take(s, n);
			if ((s->left -= (long long)n) == 0)
				s->cst = 2;
		} else {
			if (s->rlen < 2)
				break;
			s->rlen -= 2;
			memmove(s->raw, s->raw + 2, s->rlen);
			s->cst = 0;
		}
	}
	return (0);
}

/*
 * Waits until pred holds for every open client of cs[0..n), reading them
 * all; a client whose stream ends is closed. Returns how many hold.
 */
static int
sc_wait(struct sc *cs, int n, int (*pred)(const struct sc *), int ms)
{
	struct pollfd *p = xcalloc((size_t)n, sizeof *p);
	long long      start = clock_mono_ms();
	int	       i, done, np;

	for (;;) {
		done = np = 0;
		for (i = 0; i < n; i++) {
			if (cs[i].fd != -1 && pred(&cs[i]))
				done++;
			p[i].fd = cs[i].fd != -1 && !pred(&cs[i]) ? cs[i].fd
								  : -1;
			p[i].events = POLLIN;
			np += p[i].fd != -1;
		}
		if (np == 0 || clock_mono_ms() - start > ms)
			break;
		if (poll(p, (nfds_t)n, 100) == -1 && errno != EINTR)
			bench_die("poll", strerror(errno));
		for (i = 0; i < n; i++)
			if (p[i].fd != -1 && (p[i].revents & (POLLIN | POLLHUP |
								 POLLERR)) &&
			    sc_read(&cs[i]) == -1)
				sc_close(&cs[i]);
	}
	free(p);
	return (done);
}

static int
sc_attached(const struct sc *s)
{
	return (s->hdr);
}

static int
sc_got_frame(const struct sc *s)
{
	return (s->frames > 0);
}

/* (a) Submits on one keep-alive connection, then cancels each. */
static void
bench_submit(struct bench *b, char (*jids)[64])
{
	long long *post = xcalloc((size_t)b->submits, sizeof *post);
	long long *del = xcalloc((size_t)b->submits, sizeof *del);
	char	   req[512], body[RAW_MAX];
	long long  i, t0;
	int	   fd, st;

	if ((fd = http_connect(b->port)) == -1)
		bench_die("connect", strerror(errno));
	req_post(req, sizeof req, sched_spec);
	for (i = 0; i < b->submits; i++) {
		t0 = clock_mono_us();
		st = http_call(fd, req, body, sizeof body);
		post[i] = clock_mono_us() - t0;
		if (st != 201)
			bench_die("POST /v1/jobs", body);
		body_id(body, jids[i], sizeof jids[i]);
	}
	for (i = 0; i < b->submits; i++) {
		snprintf(req, sizeof req,
		    "DELETE /v1/jobs/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
		    jids[i]);
		t0 = clock_mono_us();
		st = http_call(fd, req, body, sizeof body);
		del[i] = clock_mono_us() - t0;
		if (st != 200)
			bench_die("DELETE /v1/jobs", body);
	}
	close(fd);
	print_us("submit POST /v1/jobs 201", post, b->submits);
	print_us("cancel DELETE queued 200", del, b->submits);
	free(post);
	free(del);
}

/* (b) --clients on /v1/events: RSS, and one event reaches all of them. */
static void
bench_clients(struct bench *b)
{
	struct sc *cs = xcalloc((size_t)b->clients, sizeof *cs);
	long long  rss0, rss1, rss2, t0, i, j, n;
	char	   req[512], body[RAW_MAX];
	int	   fd, got;

	rss0 = vm_rss_kb(b->sched);
	for (i = 0; i < b->clients; i += 100) {
		n = b->clients - i < 100 ? b->clients - i : 100;
		for (j = i; j < i + n; j++)
			if (sc_open(&cs[j], b->port, "/v1/events") == -1)
				bench_die("connect", strerror(errno));
		if (sc_wait(cs + i, (int)n, sc_attached, 20000) != n)
			bench_die("/v1/events", "not every client attached");
	}
	for (i = 0; i < b->clients; i++)
		if (cs[i].status != 200)
			bench_die("/v1/events", "a client was refused");
	bench_sleep_ms(200);
	rss1 = vm_rss_kb(b->sched);
	if ((fd = http_connect(b->port)) == -1)
		bench_die("connect", strerror(errno));
	req_post(req, sizeof req, sched_spec);
	t0 = clock_mono_us();
	if (http_call(fd, req, body, sizeof body) != 201)
		bench_die("POST /v1/jobs", body);
	got = sc_wait(cs, (int)b->clients, sc_got_frame, 30000);
	t0 = clock_mono_us() - t0;
	rss2 = vm_rss_kb(b->sched);
	close(fd);
	printf("sse rss before              %lld KiB\n", rss0);
	printf("sse rss with %lld clients    %lld KiB (+%lld KiB, %.1f KiB a "
	       "client)\n",
	    b->clients, rss1, rss1 - rss0,
	    (double)(rss1 - rss0) / (double)b->clients);
	printf("sse rss after one event     %lld KiB\n", rss2);
	printf("sse event reached           %d of %lld clients, the last %lld "
	       "us after the POST\n",
	    got, b->clients, t0);
	for (i = 0; i < b->clients; i++)
		sc_close(&cs[i]);
	free(cs);
}

static long long
job_field_ll(struct bench *b, const char *jid, const char *f)
{
	redisReply *r =
	    redisCommand(b->c, "HGET %sjob:%s %s", b->prefix, jid, f);
	long long v;

	if (r == NULL || r->type != REDIS_REPLY_STRING)
		bench_die("HGET", r ? "no such field" : b->c->errstr);
	v = atoll(r->str);
	freeReplyObject(r);
	return (v);
}

/* Whether the job's record is in a terminal state. */
static int
job_ended(struct bench *b, const char *jid)
{
	redisReply *r =
	    redisCommand(b->c, "HGET %sjob:%s state", b->prefix, jid);
	int ended;

	if (r == NULL || r->type != REDIS_REPLY_STRING)
		bench_die("HGET state", r ? "no state" : b->c->errstr);
	ended = strcmp(r->str, "succeeded") == 0 ||
	    strcmp(r->str, "failed") == 0 || strcmp(r->str, "canceled") == 0;
	freeReplyObject(r);
	return (ended);
}

/* (c) Per job: terminal event (id ms, finished_ms) to the SSE frame. */
static void
bench_terminal(struct bench *b)
{
	long long    *byid = xcalloc((size_t)b->jobs, sizeof *byid);
	long long    *byfin = xcalloc((size_t)b->jobs, sizeof *byfin);
	char	      req[512], body[RAW_MAX], jid[64], path[128];
	struct sc    *s = xmalloc(sizeof *s);
	struct pollfd p;
	long long     i, n = 0, t = 0, late = 0;
	int	      fd;

	if ((fd = http_connect(b->port)) == -1)
		bench_die("connect", strerror(errno));
	req_post(req, sizeof req, sched_run_spec);
	for (i = 0; i < b->jobs; i++) {
		if (http_call(fd, req, body, sizeof body) != 201)
			bench_die("POST /v1/jobs", body);
		body_id(body, jid, sizeof jid);
		snprintf(path, sizeof path, "/v1/jobs/%s/events", jid);
		if (sc_open(s, b->port, path) == -1)
			bench_die("connect", strerror(errno));
		if (sc_wait(s, 1, sc_attached, 20000) != 1 || s->status != 200)
			bench_die(jid, "its events stream did not answer 200");
		if (s->terminal || job_ended(b, jid)) {
			late++; /* ended before the client was attached */
			sc_close(s);
			continue;
		}
		while (!s->terminal) {
			p.fd = s->fd;
			p.events = POLLIN;
			if (poll(&p, 1, 30000) <= 0)
				bench_die(jid, "no terminal event in 30 s");
			t = wall_us();
			if (sc_read(s) == -1 && !s->terminal)
				bench_die(jid, "stream ended before its end");
		}
		sc_close(s);
		byid[n] = t - atoll(s->term_id) * 1000;
		byfin[n] = t - job_field_ll(b, jid, "finished_ms") * 1000;
		n++;
	}
	close(fd);
	if (n == 0)
		bench_die("terminal", "no job was followed live");
	print_us("terminal stream id -> sse", byid, n);
	print_us("terminal finished_ms -> sse", byfin, n);
	if (late > 0)
		printf("terminal: %lld jobs ended before their client attached, "
		       "not counted\n",
		    late);
	free(s);
	free(byid);
	free(byfin);
}

/* Starts comfyq-sim; returns its pid and writes its URL. */
static pid_t
bench_start_sim(struct bench *b, char *url, size_t urllen)
{
	char	    pf[192], base[192], log[192], port[16] = "";
	const char *argv[] = { SIM_BIN, "--port", "0", "--port-file", pf,
		"--base-directory", base, "--step-ms", "10", "--model-load-ms",
		"0", "--log-level", "warning", NULL };
	long long   start = clock_mono_ms();
	pid_t	    pid;
	FILE	   *f;

	snprintf(pf, sizeof pf, "%s/sim.port", b->dir);
	snprintf(base, sizeof base, "%s/sim", b->dir);
	snprintf(log, sizeof log, "%s/sim.log", b->dir);
	pid = proc_start(argv, log);
	while ((f = fopen(pf, "r")) == NULL ||
	    fgets(port, sizeof port, f) == NULL) {
		if (f != NULL)
			fclose(f);
		if (clock_mono_ms() - start > 20000)
			bench_die("comfyq-sim", "did not start");
		bench_sleep_ms(10);
	}
	fclose(f);
	port[strcspn(port, "\n")] = '\0';
	snprintf(url, urllen, "http://127.0.0.1:%s", port);
	return (pid);
}

static pid_t
bench_start_worker(struct bench *b, const char *simurl)
{
	char	    out[192], log[192];
	const char *argv[] = { WORKER_BIN, "--redis-url", b->url, "--queue",
		b->queue, "--comfyui-url", simurl, "--worker-id", "bench-w",
		"--output-dir", out, "--workflows-dir", WORKFLOWS_DIR,
		"--slots", "8", "--log-level", "warning", NULL };

	snprintf(out, sizeof out, "%s/out", b->dir);
	snprintf(log, sizeof log, "%s/worker.log", b->dir);
	return (proc_start(argv, log));
}

/* Starts the scheduler and waits for /readyz. */
static void
bench_start_sched(struct bench *b)
{
	char	    listen[32], out[192], log[192], req[128], body[RAW_MAX];
	const char *argv[] = { SCHED_BIN, "--redis-url", b->url, "--queue",
		b->queue, "--listen", listen, "--output-dir", out,
		"--workflows-dir", WORKFLOWS_DIR, "--log-level", "warning",
		NULL };
	long long   start = clock_mono_ms();
	int	    fd;

	b->port = free_port();
	snprintf(listen, sizeof listen, "127.0.0.1:%d", b->port);
	snprintf(out, sizeof out, "%s/out", b->dir);
	snprintf(log, sizeof log, "%s/sched.log", b->dir);
	b->sched = proc_start(argv, log);
	snprintf(req, sizeof req,
	    "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
	for (;;) {
		if ((fd = http_connect(b->port)) != -1) {
			if (http_call(fd, req, body, sizeof body) == 200) {
				close(fd);
				return;
			}
			close(fd);
		}
		if (proc_gone(b->sched) || clock_mono_ms() - start > 20000)
			bench_die("comfyq-scheduler", "not ready (see its log)");
		bench_sleep_ms(20);
	}
}

int
main(int argc, char **argv)
{
	static struct bench b = { .submits = 2000, .clients = 1000, .jobs = 50 };
	struct rlimit	    rl;
	char		    err[512], simurl[64];
	char (*jids)[64];
	pid_t		    sim, wk;
	int		    i, rc;

	log_init("bench_sched", LL_WARNING, 0);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--submits") == 0)
			b.submits = bench_arg(argc, argv, &i, 1, SUBMITS_MAX);
		else if (strcmp(argv[i], "--clients") == 0)
			b.clients = bench_arg(argc, argv, &i, 1, CLIENTS_MAX);
		else if (strcmp(argv[i], "--jobs") == 0)
			b.jobs = bench_arg(argc, argv, &i, 1, JOBS_MAX);
		else
			bench_die(argv[i], "unknown option (see the source)");
	}
	if ((b.url = getenv("COMFYQ_TEST_REDIS_URL")) == NULL)
		bench_die(
		    "COMFYQ_TEST_REDIS_URL", "not set (use with-redis.sh)");
	/* Room for the clients here and in the scheduler (it inherits it). */
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		bench_die("getrlimit", strerror(errno));
	if (rl.rlim_cur < (rlim_t)b.clients + 256) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1 ||
		    rl.rlim_cur < (rlim_t)b.clients + 256)
			bench_die("RLIMIT_NOFILE", "too low for --clients");
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(b.queue, sizeof b.queue, "bench%d", (int)getpid());
	snprintf(b.prefix, sizeof b.prefix, "cq:{%s}:", b.queue);
	snprintf(b.dir, sizeof b.dir, "/tmp/bench_sched.XXXXXX");
	if (mkdtemp(b.dir) == NULL)
		bench_die("mkdtemp", b.dir);
	if ((b.c = rq_connect(b.url, 10000, 1, err, sizeof err)) == NULL)
		bench_die("redis", err);
	bench_start_sched(&b);
	printf("scheduler pid %d on port %d; %lld submits, %lld SSE clients, "
	       "%lld jobs (logs in %s)\n",
	    (int)b.sched, b.port, b.submits, b.clients, b.jobs, b.dir);
	fflush(stdout);
	jids = xcalloc((size_t)b.submits, sizeof *jids);
	bench_submit(&b, jids);
	free(jids);
	bench_clients(&b);
	sim = bench_start_sim(&b, simurl, sizeof simurl);
	wk = bench_start_worker(&b, simurl);
	bench_terminal(&b);
	rc = proc_stop(b.sched, SIGTERM, 10000) == 0 ? 0 : 1;
	if (proc_stop(wk, SIGTERM, 10000) != 0)
		rc = 1;
	proc_stop(sim, SIGTERM, 5000);
	redisFree(b.c);
	return (rc);
}
