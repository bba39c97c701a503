/*
 * comfyq-janitor as it runs: real janitor processes, a stand-in worker
 * process killed with SIGKILL, a Redis paused with CLIENT PAUSE, files on
 * disk. Runs on its own redis-server (with-redis.sh --own), since it pauses
 * it. Times are asserted with generous bounds; bench/ measures them.
 *
 * The stand-in worker (standin.c) drives the functions library as
 * comfyq-worker does; the same test against the real worker binary belongs
 * with the worker.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "standin.h"
#include "tfile.h"
#include "util.h"

#define LEASE_MS 2000
#define BEAT_MS	 300
#define TICK_MS	 100

static char dir[256];	  /* this run's temp dir */
static char logpath[300]; /* the current janitor's log */

/* The queue name inside a prefix cq:{<queue>}:. */
static const char *
queue_of(const char *P)
{
	static char q[200];

	snprintf(q, sizeof q, "%.*s", (int)strlen(P) - 6, P + 4);
	return (q);
}

static void
dir_remove(void)
{
	char cmd[300];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* The temp dir of this run, removed when the test process exits. */
static void
dir_make(void)
{
	if (dir[0] != '\0')
		return;
	snprintf(dir, sizeof dir, "%s/comfyq-jan-XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ASSERT_TRUE(mkdtemp(dir) != NULL);
	atexit(dir_remove);
}

/*
 * Starts comfyq-janitor on P's queue with extra NULL-terminated settings;
 * its log goes to logpath (tag names it).
 */
static pid_t
janitor_start(const char *P, const char *tag, ...)
{
	const char *argv[64];
	char	    tick[16];
	const char *a;
	va_list	    ap;
	int	    n = 0;
	pid_t	    pid;

	dir_make();
	snprintf(logpath, sizeof logpath, "%s/%s.log", dir, tag);
	snprintf(tick, sizeof tick, "%d", TICK_MS);
	argv[n++] = JANITOR_BIN;
	argv[n++] = "--redis-url";
	argv[n++] = getenv("COMFYQ_TEST_REDIS_URL");
	argv[n++] = "--queue";
	argv[n++] = queue_of(P);
	argv[n++] = "--tick-ms";
	argv[n++] = tick;
	argv[n++] = "--log-level";
	argv[n++] = "verbose";
	va_start(ap, tag);
	while ((a = va_arg(ap, const char *)) != NULL && n < 62)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	pid = proc_start(argv, logpath);
	ASSERT_TRUE(pid > 0);
	return (pid);
}

/* SIGTERM; the janitor must end with status 0 within 5 s and be gone. */
static void
janitor_stop(pid_t pid)
{
	ASSERT_EQ(proc_stop(pid, SIGTERM, 5000), 0);
	ASSERT_TRUE(proc_gone(pid));
}

/* Whether the current janitor log holds needle. */
static int
log_has(const char *needle)
{
	char err[256], *text;
	int  found;

	text = file_slurp(logpath, 1 << 24, NULL, err, sizeof err);
	if (text == NULL)
		return (0);
	found = strstr(text, needle) != NULL;
	free(text);
	return (found);
}

/*
 * Polls cond(P) every 5 ms for up to timeout_ms. Returns the ms it took,
 * or fails the test.
 */
static long long
wait_for(
    int (*cond)(const char *), const char *P, int timeout_ms, const char *what)
{
	long long t0 = clock_mono_ms(), t;

	for (;;) {
		if (cond(P))
			return (clock_mono_ms() - t0);
		if ((t = clock_mono_ms() - t0) > timeout_ms)
			unit_fail(__FILE__, __LINE__, "%s: not within %d ms",
			    what, timeout_ms);
		it_sleep_ms(5);
	}
}

static struct standin worker, worker2;

static void
standin_up(struct standin *s, const char *P, const char *wid, int njobs)
{
	struct standin_opts o = { getenv("COMFYQ_TEST_REDIS_URL"), P, wid,
		"gpu0", "h1", njobs, LEASE_MS, BEAT_MS };
	char		    err[512];

	if (standin_start(s, &o, err, sizeof err) == -1)
		unit_fail(__FILE__, __LINE__, "%s", err);
	ASSERT_EQ(s->njobs, njobs);
}

/* Queues n jobs and gives pool gpu0 n slots. */
static void
queue_jobs(const char *P, int n)
{
	char cap[16];
	int  i;

	for (i = 0; i < n; i++)
		it_enq(P, "{\"workflow\":\"a\",\"tenant\":\"t\"}");
	snprintf(cap, sizeof cap, "%d", n);
	it_setcap(P, "gpu0", cap, "0");
}

static int
all_back(const char *P)
{
	return (it_int("HLEN %sheld:gpu0", P) == 0 &&
	    it_int("ZCARD %sready:normal", P) == worker.njobs);
}

/* The time (its stream id) of the first event of type; fails if none. */
static long long
first_event_ms(const char *P, const char *type)
{
	redisReply *r = it_cmd("XRANGE %sevents - +", P);
	long long   ms = -1;
	size_t	    i;

	for (i = 0; i < r->elements && ms == -1; i++)
		if (strcmp(r->element[i]->element[1]->element[1]->str, type) ==
		    0)
			ms = atoll(r->element[i]->element[0]->str);
	freeReplyObject(r);
	ASSERT_TRUE(ms != -1);
	return (ms);
}

static void
test_kill9_frees_slots_and_requeues(void)
{
	const char *P = it_queue("q");
	redisReply *r;
	pid_t	    jan;
	long long   until;
	int	    i;

	queue_jobs(P, 2);
	standin_up(&worker, P, "w1", 2);
	jan = janitor_start(P, "kill9", NULL);
	/* Alive and beating past its lease: nothing is taken from it. */
	it_sleep_ms(LEASE_MS + 500);
	ASSERT_EQ(it_events(P, "requeued", NULL), 0);
	ASSERT_EQ(it_int("HLEN %sheld:gpu0", P), 2);
	standin_kill(&worker);
	until = atoll(it_hget(P, worker.jid[0], "lease_until"));
	wait_for(all_back, P, LEASE_MS + 10 * TICK_MS + 3000,
	    "slots free and jobs ready after kill -9");
	ASSERT_EQ(it_events(P, "requeued", NULL), 2);
	/* Not before its last heartbeat's lease ran out. */
	ASSERT_TRUE(first_event_ms(P, "requeued") >= until);
	for (i = 0; i < 2; i++) {
		ASSERT_STREQ(it_hget(P, worker.jid[i], "state"), "queued");
		ASSERT_STREQ(it_hget(P, worker.jid[i], "reclaims"), "1");
		/* The killed worker's late word is refused and changes nothing. */
		r = it_fcall(
		    P, "complete", worker.jid[i], worker.fence[i], "[]", NULL);
		ASSERT_STATUS(r, "STALE");
		freeReplyObject(r);
		r = it_fcall(P, "fail", worker.jid[i], worker.fence[i],
		    "internal", "late", "0", NULL);
		ASSERT_STATUS(r, "STALE");
		freeReplyObject(r);
		ASSERT_STREQ(it_hget(P, worker.jid[i], "state"), "queued");
	}
	ASSERT_EQ(it_events(P, "succeeded", NULL), 0);
	ASSERT_EQ(it_int("XLEN %srefunds", P), 0);
	janitor_stop(jan);
	ASSERT_TRUE(log_has("tick: requeued=2 lost=0"));
}

/* Claims n jobs on gpu0 with a lease that is left to run out. */
static void
claim_and_abandon(const char *P, int n)
{
	struct it_claimed c;
	int		  i;

	queue_jobs(P, n);
	for (i = 0; i < n; i++)
		it_claim(P, "w1", "gpu0", "1000", &c);
}

static int
twenty_ready(const char *P)
{
	return (it_int("ZCARD %sready:normal", P) == 20);
}

static void
test_two_janitors_one_requeue(void)
{
	const char *P = it_queue("q");
	redisReply *r;
	pid_t	    a, b;
	size_t	    i;

	claim_and_abandon(P, 20);
	it_sleep_ms(1100);
	a = janitor_start(P, "race-a", "--tick-ms", "10", NULL);
	b = janitor_start(P, "race-b", "--tick-ms", "10", NULL);
	wait_for(twenty_ready, P, 10000, "20 jobs back in ready");
	it_sleep_ms(200);
	janitor_stop(a);
	janitor_stop(b);
	ASSERT_EQ(it_events(P, "requeued", NULL), 20);
	ASSERT_EQ(it_int("HLEN %sheld:gpu0", P), 0);
	r = it_cmd("ZRANGE %sready:normal 0 -1", P);
	ASSERT_EQ(r->elements, 20);
	for (i = 0; i < r->elements; i++)
		ASSERT_STREQ(it_hget(P, r->element[i]->str, "reclaims"), "1");
	freeReplyObject(r);
	r = it_cmd("HGET %sstats requeued", P);
	ASSERT_STREQ(r->str, "20");
	freeReplyObject(r);
}

static int
worker2_back(const char *P)
{
	(void)P;
	return (strcmp(it_hget(P, worker2.jid[0], "state"), "queued") == 0 &&
	    strcmp(it_hget(P, worker2.jid[1], "state"), "queued") == 0);
}

/*
 * Redis stops answering for longer than the lease (CLIENT PAUSE): every
 * lease has run out when it comes back, but the live worker's heartbeats
 * land in the grace period and it keeps its jobs. The worker that died
 * before the pause loses its jobs, after the grace.
 */
static void
test_redis_pause_no_mass_reclaim(void)
{
	const char *P = it_queue("q");
	redisReply *r;
	pid_t	    jan;
	long long   t0;
	int	    i;

	queue_jobs(P, 4);
	standin_up(&worker, P, "w1", 2);
	standin_up(&worker2, P, "w2", 2);
	jan = janitor_start(
	    P, "pause", "--stall-after-ms", "500", "--grace-ms", "1500", NULL);
	it_sleep_ms(500);
	standin_kill(&worker2);
	r = it_cmd("CLIENT PAUSE %d WRITE", LEASE_MS + 1500);
	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
	t0 = clock_mono_ms();
	it_sleep_ms(LEASE_MS + 1500 + 500);
	/* Back, within the grace: nothing reclaimed yet, even the dead's. */
	ASSERT_EQ(it_events(P, "requeued", NULL), 0);
	ASSERT_STREQ(it_hget(P, worker2.jid[0], "state"), "active");
	wait_for(worker2_back, P, 6000, "the dead worker's jobs after grace");
	ASSERT_TRUE(clock_mono_ms() - t0 >= LEASE_MS + 1500 + 1500 - 200);
	it_sleep_ms(1000);
	ASSERT_EQ(it_events(P, "requeued", NULL), 2);
	for (i = 0; i < 2; i++) {
		ASSERT_STREQ(it_hget(P, worker.jid[i], "state"), "active");
		ASSERT_STREQ(
		    it_hget(P, worker.jid[i], "fence"), worker.fence[i]);
		ASSERT_EQ(it_events(P, "requeued", worker.jid[i]), 0);
	}
	r = it_cmd("HGET %sstats janitor:stall_holds", P);
	ASSERT_STREQ(r->str, "1");
	freeReplyObject(r);
	standin_kill(&worker);
	janitor_stop(jan);
	ASSERT_TRUE(log_has("stall: no reap for over 500 ms"));
}

static char tree[512];

static const char *
tp(const char *rel)
{
	return (tfile_path(tree, rel));
}

static int
four_freed(const char *P)
{
	return (it_stat(P, "janitor:freed_files") == 4 &&
	    log_has("clean: pass over 3 folders"));
}

static int
six_freed(const char *P)
{
	return (it_stat(P, "janitor:freed_files") == 6);
}

#define DAY 86400

static void
test_file_cleanup(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	redisReply	 *r;
	char		  spec[3 * PATH_MAX + 64], rel[128];
	pid_t		  jan;

	dir_make();
	snprintf(tree, sizeof tree, "%s/comfy", dir);
	ASSERT_EQ(mkdir(tree, 0755), 0);
	ASSERT_EQ(mkdir(tp("output"), 0755), 0);
	ASSERT_EQ(mkdir(tp("temp"), 0755), 0);
	ASSERT_EQ(mkdir(tp("input"), 0755), 0);
	ASSERT_EQ(mkdir(tp("outside"), 0755), 0);
	ASSERT_EQ(mkdir(tp("output/comfyq"), 0755), 0);
	it_enq(P, "{\"workflow\":\"a\"}");
	it_setcap(P, "gpu0", "1", "0");
	it_claim(P, "w1", "gpu0", "600000", &c);
	r = it_fcall(
	    P, "job_files", c.jid, c.fence, "[\"input/in.png\"]", NULL);
	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
	snprintf(rel, sizeof rel, "output/comfyq/%s", c.jid);
	ASSERT_EQ(mkdir(tp(rel), 0755), 0);
	snprintf(rel, sizeof rel, "output/comfyq/%s/x.png", c.jid);
	tfile_write(tp(rel), 300, 2 * DAY);
	ASSERT_EQ(mkdir(tp("output/comfyq/ended"), 0755), 0);
	tfile_write(tp("output/comfyq/ended/y.png"), 20, 2 * DAY);
	tfile_write(tp("output/old.png"), 1000, 2 * DAY);
	tfile_write(tp("output/new.png"), 1000, 60);
	tfile_write(tp("temp/t.tmp"), 10, 7200);
	tfile_write(tp("temp/fresh.tmp"), 10, 600);
	tfile_write(tp("input/old.png"), 50, 8 * DAY);
	tfile_write(tp("input/in.png"), 70, 8 * DAY);
	tfile_write(tp("input/recent.png"), 70, 2 * DAY);
	tfile_write(tp("outside/o.png"), 5, 30 * DAY);
	ASSERT_EQ(symlink(tp("outside"), tp("output/link")), 0);
	ASSERT_EQ(symlink(tp("outside/o.png"), tp("temp/o.png")), 0);
	tfile_age(tp("output/link"), 30 * DAY);
	tfile_age(tp("temp/o.png"), 30 * DAY);

	snprintf(spec, sizeof spec, "output=%s,temp=%s,input=%s", tp("output"),
	    tp("temp"), tp("input"));
	jan = janitor_start(P, "clean", "--clean-dirs", spec, NULL);
	wait_for(four_freed, P, 10000, "the first cleanup pass");
	it_sleep_ms(3 * TICK_MS);
	ASSERT_EQ(it_stat(P, "janitor:freed_files"), 4);
	ASSERT_EQ(it_stat(P, "janitor:freed_bytes"), 20 + 1000 + 10 + 50);
	ASSERT_TRUE(!tfile_exists(tp("output/old.png")));
	ASSERT_TRUE(!tfile_exists(tp("output/comfyq/ended/y.png")));
	ASSERT_TRUE(!tfile_exists(tp("temp/t.tmp")));
	ASSERT_TRUE(!tfile_exists(tp("input/old.png")));
	ASSERT_TRUE(tfile_exists(tp(rel)));
	ASSERT_TRUE(tfile_exists(tp("input/in.png")));
	ASSERT_TRUE(tfile_exists(tp("output/new.png")));
	ASSERT_TRUE(tfile_exists(tp("temp/fresh.tmp")));
	ASSERT_TRUE(tfile_exists(tp("input/recent.png")));
	ASSERT_TRUE(tfile_exists(tp("output/link")));
	ASSERT_TRUE(tfile_exists(tp("temp/o.png")));
	ASSERT_TRUE(tfile_exists(tp("outside/o.png")));
	ASSERT_TRUE(log_has("freed 4 files (1080 bytes)"));
	ASSERT_TRUE(log_has("kept 1 in use"));
	janitor_stop(jan);

	/* The job ends: its files go on the next pass. */
	r = it_fcall(P, "complete", c.jid, c.fence, "[]", NULL);
	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
	jan = janitor_start(P, "clean2", "--clean-dirs", spec, NULL);
	wait_for(six_freed, P, 10000, "the second cleanup pass");
	ASSERT_TRUE(!tfile_exists(tp(rel)));
	ASSERT_TRUE(!tfile_exists(tp("input/in.png")));
	ASSERT_TRUE(tfile_exists(tp("outside/o.png")));
	janitor_stop(jan);
}

/* With Redis away nothing is known to be unused: nothing is deleted. */
static void
test_redis_down_deletes_nothing(void)
{
	char  spec[PATH_MAX + 16];
	pid_t jan;

	dir_make();
	snprintf(tree, sizeof tree, "%s/down", dir);
	ASSERT_EQ(mkdir(tree, 0755), 0);
	tfile_write(tp("old.png"), 10, 30 * DAY);
	snprintf(spec, sizeof spec, "output=%s", tree);
	jan = janitor_start("cq:{down}:", "down", "--redis-url",
	    "redis://127.0.0.1:1", "--clean-dirs", spec, NULL);
	it_sleep_ms(800);
	ASSERT_TRUE(tfile_exists(tp("old.png")));
	ASSERT_TRUE(!proc_gone(jan));
	/* A janitor waiting for Redis still stops at once. */
	janitor_stop(jan);
	ASSERT_TRUE(log_has("redis: redis 127.0.0.1:1: Connection refused"));
}

static int
w_gone(const char *P)
{
	return (strcmp(it_get("HGET %sworker:w-gone state", P), "gone") == 0);
}

/* Runs the comfyq CLI on P's queue; returns its output. */
static const char *
cli(const char *P, const char *args)
{
	static char out[8192];
	char	    cmd[1024];
	FILE	   *f;
	size_t	    n;

	snprintf(cmd, sizeof cmd, "%s --redis %s --queue %s %s 2>&1", CLI_BIN,
	    getenv("COMFYQ_TEST_REDIS_URL"), queue_of(P), args);
	ASSERT_TRUE((f = popen(cmd, "r")) != NULL);
	n = fread(out, 1, sizeof out - 1, f);
	out[n] = '\0';
	ASSERT_EQ(pclose(f), 0);
	return (out);
}

static void
test_dead_worker_shows_gone(void)
{
	const char *P = it_queue("q");
	pid_t	    jan;
	int	    i;

	freeReplyObject(it_fcall(P, "register", "w-gone", "600000", "gpu0", "1",
	    "0", "host", "h1", NULL));
	freeReplyObject(it_fcall(P, "register", "w-live", "600000", "gpu0", "1",
	    "0", "host", "h1", NULL));
	jan = janitor_start(P, "gone", "--worker-dead-ms", "1000", NULL);
	/* w-live beats; w-gone never does again. */
	for (i = 0; !w_gone(P); i++) {
		ASSERT_TRUE(i < 100);
		freeReplyObject(it_fcall(
		    P, "heartbeat", "w-live", "30000", "600000", NULL));
		it_sleep_ms(100);
	}
	ASSERT_TRUE(strstr(cli(P, "workers"), "w-gone") != NULL);
	ASSERT_TRUE(strstr(cli(P, "workers --json"),
			"\"worker\":\"w-gone\",\"state\":\"gone\"") != NULL);
	ASSERT_TRUE(strstr(cli(P, "workers --json"),
			"\"worker\":\"w-live\",\"state\":\"up\"") != NULL);
	janitor_stop(jan);
	ASSERT_TRUE(log_has("worker=w-gone gone: no heartbeat"));
	ASSERT_TRUE(!log_has("worker=w-live"));
}

static void
write_config(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ASSERT_TRUE(f != NULL);
	fputs(text, f);
	ASSERT_EQ(fclose(f), 0);
}

static int
events_trimmed(const char *P)
{
	return (it_int("XLEN %sevents", P) < 1000);
}

static void
test_sighup_reloads(void)
{
	const char *P = it_queue("q");
	char	    conf[PATH_MAX];
	redisReply *r;
	pid_t	    jan;

	dir_make();
	snprintf(conf, sizeof conf, "%s/janitor.conf", dir);
	write_config(conf, "events-max-len = 0\nevents-max-age-s = 0\n");
	jan = janitor_start(P, "hup", "--config", conf, NULL);
	r = it_cmd("EVAL %s 1 %sevents 3000",
	    "for i = 1, ARGV[1] do redis.call('XADD', KEYS[1], '*', "
	    "'type', 'x') end",
	    P);
	freeReplyObject(r);
	it_sleep_ms(5 * TICK_MS);
	ASSERT_EQ(it_int("XLEN %sevents", P), 3000);
	/* A bad file on reload: kept running with what it had. */
	write_config(conf, "events-max-len = -5\n");
	ASSERT_EQ(kill(jan, SIGHUP), 0);
	it_sleep_ms(5 * TICK_MS);
	ASSERT_TRUE(log_has("events-max-len: -5 not in 0..1000000000; "
			    "settings unchanged"));
	ASSERT_EQ(it_int("XLEN %sevents", P), 3000);
	write_config(conf, "events-max-len = 500\n");
	ASSERT_EQ(kill(jan, SIGHUP), 0);
	wait_for(events_trimmed, P, 5000, "events trimmed after SIGHUP");
	ASSERT_TRUE(it_int("XLEN %sevents", P) >= 500);
	ASSERT_TRUE(log_has("reload: settings re-read"));
	janitor_stop(jan);
	ASSERT_TRUE(log_has("SIGTERM: stopping"));
}

/* Runs the janitor with args; returns its exit status, output in log. */
static int
janitor_exit(const char *tag, const char *const extra[])
{
	const char *argv[16];
	int	    n = 0, i;
	pid_t	    pid;

	dir_make();
	snprintf(logpath, sizeof logpath, "%s/%s.log", dir, tag);
	argv[n++] = JANITOR_BIN;
	for (i = 0; extra[i] != NULL && n < 15; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	pid = proc_start(argv, logpath);
	return (proc_stop(pid, 0, 5000));
}

static void
test_bad_settings_exit_2(void)
{
	char	    link[PATH_MAX], spec[PATH_MAX + 16];
	const char *help[] = { "--help", NULL };
	const char *root[] = { "--clean-dirs", "output=/", NULL };
	const char *sym[] = { "--clean-dirs", spec, NULL };
	const char *tick[] = { "--tick-ms", "0", NULL };
	const char *queue[] = { "--queue", "a b", NULL };
	const char *url[] = { "--redis-url", "http://x", NULL };
	const char *ok[] = { "--check", "--redis-url", "redis://127.0.0.1:1",
		NULL };

	dir_make();
	snprintf(link, sizeof link, "%s/link", dir);
	unlink(link);
	ASSERT_EQ(symlink(dir, link), 0);
	snprintf(spec, sizeof spec, "temp=%s", link);
	ASSERT_EQ(janitor_exit("help", help), 0);
	ASSERT_TRUE(log_has("COMFYQ_CLEAN_DIRS"));
	ASSERT_TRUE(log_has("--stall-after-ms"));
	ASSERT_EQ(janitor_exit("root", root), 2);
	ASSERT_TRUE(log_has("clean-dirs: '/' is the root directory"));
	ASSERT_EQ(janitor_exit("sym", sym), 2);
	ASSERT_TRUE(log_has("is a symlink; name the folder itself"));
	ASSERT_EQ(janitor_exit("tick", tick), 2);
	ASSERT_TRUE(log_has("--tick-ms: 0 not in 10..60000"));
	ASSERT_EQ(janitor_exit("queue", queue), 2);
	ASSERT_TRUE(log_has("queue: 'a b' must be 1..128 of letters"));
	ASSERT_EQ(janitor_exit("url", url), 2);
	ASSERT_TRUE(log_has("does not start with redis://"));
	ASSERT_EQ(janitor_exit("check", ok), 0);
	ASSERT_TRUE(log_has("configuration OK"));
}

static int
library_loaded(const char *P)
{
	redisReply *r = it_cmd("FUNCTION LIST LIBRARYNAME comfyq");
	int	    n = (int)r->elements;

	(void)P;
	freeReplyObject(r);
	return (n == 1);
}

/* Another program replaced the library with one lacking our functions. */
static void
test_library_loaded_again(void)
{
	const char *P = it_queue("q");
	pid_t	    jan;

	jan = janitor_start(P, "reload-lib", NULL);
	it_sleep_ms(3 * TICK_MS);
	freeReplyObject(it_cmd("FUNCTION DELETE comfyq"));
	ASSERT_TRUE(!library_loaded(P));
	wait_for(library_loaded, P, 5000, "the library loaded again");
	janitor_stop(jan);
	ASSERT_TRUE(log_has("reap: ERR Function not found"));
}

const struct unit_test itests[] = {
	{ "kill9_frees_slots_and_requeues",
	    test_kill9_frees_slots_and_requeues },
	{ "two_janitors_one_requeue", test_two_janitors_one_requeue },
	{ "redis_pause_no_mass_reclaim", test_redis_pause_no_mass_reclaim },
	{ "file_cleanup", test_file_cleanup },
	{ "redis_down_deletes_nothing", test_redis_down_deletes_nothing },
	{ "dead_worker_shows_gone", test_dead_worker_shows_gone },
	{ "sighup_reloads", test_sighup_reloads },
	{ "bad_settings_exit_2", test_bad_settings_exit_2 },
	{ "library_loaded_again", test_library_loaded_again },
	{ NULL, NULL },
};
