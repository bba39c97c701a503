/*
 * Integration test runner and helpers (see itest.h). Every helper that
 * talks to Redis fails the test on a lost connection, so a test never
 * passes by not talking to the server.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "itest.h"
#include "log.h"
#include "rq.h"
#include "util.h"
#include "xmalloc.h"

static redisContext *it_ctx;
static const char   *it_current;

redisContext *
it_redis_new(void)
{
	const char   *url = getenv("COMFYQ_TEST_REDIS_URL");
	redisContext *c;
	char	      err[512];

	if (url == NULL)
		unit_fail(__FILE__, __LINE__,
		    "COMFYQ_TEST_REDIS_URL is not "
		    "set (run through tests/lib/with-redis.sh)");
	if ((c = rq_connect(url, NULL, 10000, 1, err, sizeof err)) == NULL)
		unit_fail(__FILE__, __LINE__, "%s", err);
	return (c);
}

redisContext *
it_redis(void)
{
	if (it_ctx == NULL)
		it_ctx = it_redis_new();
	return (it_ctx);
}

/* A queue prefix no other test or run uses. */
const char *
it_queue(const char *name)
{
	static char buf[256];
	static int  n;

	snprintf(buf, sizeof buf, "cq:{t%d-%s-%s-%d}:", (int)getpid(),
	    it_current, name, n++);
	return (buf);
}

static redisReply *
it_check(redisReply *r)
{
	if (r == NULL)
		unit_fail(__FILE__, __LINE__, "redis: %s", it_ctx->errstr);
	return (r);
}

/* FCALL comfyq_<fn> 1 prefix args... (NULL-terminated strings). */
redisReply *
it_fcall(const char *prefix, const char *fn, ...)
{
	struct rq_cmd c;
	va_list	      ap;
	const char   *a;
	redisReply   *r;

	rq_cmd_fcall(&c, fn, prefix);
	va_start(ap, fn);
	while ((a = va_arg(ap, const char *)) != NULL)
		rq_cmd_add(&c, a);
	va_end(ap);
	r = rq_run(it_redis(), &c);
	rq_cmd_free(&c);
	return (it_check(r));
}

redisReply *
it_cmd(const char *fmt, ...)
{
	va_list	    ap;
	redisReply *r;

	va_start(ap, fmt);
	r = redisvCommand(it_redis(), fmt, ap);
	va_end(ap);
	return (it_check(r));
}

/* HGET prefix job:<jid> field; "" when missing. Valid until the next call. */
const char *
it_hget(const char *prefix, const char *jid, const char *field)
{
	return (it_get("HGET %sjob:%s %s", prefix, jid, field));
}

/* Runs a command that returns a string; "" for nil. Valid until the next. */
const char *
it_get(const char *fmt, ...)
{
	static char buf[65536];
	va_list	    ap;
	redisReply *r;

	va_start(ap, fmt);
	r = it_check(redisvCommand(it_redis(), fmt, ap));
	va_end(ap);
	snprintf(
	    buf, sizeof buf, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
	return (buf);
}

/* A counter of prefix's stats hash (0 when unset). */
long long
it_stat(const char *prefix, const char *name)
{
	return (atoll(it_get("HGET %sstats %s", prefix, name)));
}

/* Runs a command that returns an integer. */
long long
it_int(const char *fmt, ...)
{
	va_list	    ap;
	redisReply *r;
	long long   v;

	va_start(ap, fmt);
	r = it_check(redisvCommand(it_redis(), fmt, ap));
	va_end(ap);
	if (r->type != REDIS_REPLY_INTEGER)
		unit_fail(__FILE__, __LINE__,
		    "expected an integer reply "
		    "to %s, got type %d",
		    fmt, r->type);
	v = r->integer;
	freeReplyObject(r);
	return (v);
}

/* Counts events of type (NULL: any) for jid (NULL: any) in the stream. */
int
it_events(const char *prefix, const char *type, const char *jid)
{
	redisReply *r, *f;
	size_t	    i, k;
	int	    n = 0;

	r = it_cmd("XRANGE %sevents - +", prefix);
	for (i = 0; i < r->elements; i++) {
		const char *t = NULL, *j = NULL;

		f = r->element[i]->element[1];
		for (k = 0; k + 1 < f->elements; k += 2) {
			if (strcmp(f->element[k]->str, "type") == 0)
				t = f->element[k + 1]->str;
			if (strcmp(f->element[k]->str, "job") == 0)
				j = f->element[k + 1]->str;
		}
		if ((type == NULL || (t && strcmp(t, type) == 0)) &&
		    (jid == NULL || (j && strcmp(j, jid) == 0)))
			n++;
	}
	freeReplyObject(r);
	return (n);
}

/* Counts the keys under prefix. */
int
it_keys(const char *prefix)
{
	redisReply *r;
	int	    n;

	r = it_cmd("KEYS %s*", prefix);
	n = (int)r->elements;
	freeReplyObject(r);
	return (n);
}

static int
it_cmp_str(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

/* Takes a snapshot of every key under prefix (see struct it_snap). */
void
it_snap_take(const char *prefix, struct it_snap *s)
{
	redisReply *keys, *t, *d;
	size_t	    i;

	keys = it_cmd("KEYS %s*", prefix);
	s->n = keys->elements;
	s->names = xcalloc(s->n + 1, sizeof *s->names);
	s->vals = xcalloc(s->n + 1, sizeof *s->vals);
	s->lens = xcalloc(s->n + 1, sizeof *s->lens);
	for (i = 0; i < s->n; i++)
		s->names[i] = xstrdup(keys->element[i]->str);
	freeReplyObject(keys);
	qsort(s->names, s->n, sizeof *s->names, it_cmp_str);
	for (i = 0; i < s->n; i++) {
		t = it_cmd("TYPE %s", s->names[i]);
		d = it_cmd("DUMP %s", s->names[i]);
		s->lens[i] = strlen(t->str) + 1 +
		    (d->type == REDIS_REPLY_STRING ? d->len : 0);
		s->vals[i] = xmalloc(s->lens[i] + 1);
		memcpy(s->vals[i], t->str, strlen(t->str));
		s->vals[i][strlen(t->str)] = '\n';
		if (d->type == REDIS_REPLY_STRING)
			memcpy(s->vals[i] + strlen(t->str) + 1, d->str, d->len);
		freeReplyObject(t);
		freeReplyObject(d);
	}
}

void
it_snap_free(struct it_snap *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		free(s->names[i]);
		free(s->vals[i]);
	}
	free(s->names);
	free(s->vals);
	free(s->lens);
	memset(s, 0, sizeof *s);
}

/* The index of name in s, or s->n. */
static size_t
it_snap_find(const struct it_snap *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->names[i], name) == 0)
			return (i);
	return (s->n);
}

/* The keys that differ between two snapshots (changed, gone or new), space
 * separated, "" when none. Valid until the next call. */
const char *
it_snap_diff(const struct it_snap *a, const struct it_snap *b)
{
	static char buf[8192];
	size_t	    i, k, off = 0;

	buf[0] = '\0';
	for (i = 0; i < a->n && off < sizeof buf; i++) {
		k = it_snap_find(b, a->names[i]);
		if (k < b->n && a->lens[i] == b->lens[k] &&
		    memcmp(a->vals[i], b->vals[k], a->lens[i]) == 0)
			continue;
		off += (size_t)snprintf(
		    buf + off, sizeof buf - off, " %s", a->names[i]);
	}
	for (i = 0; i < b->n && off < sizeof buf; i++)
		if (it_snap_find(a, b->names[i]) == a->n)
			off += (size_t)snprintf(
			    buf + off, sizeof buf - off, " %s", b->names[i]);
	return (buf[0] == ' ' ? buf + 1 : buf);
}

/* Deletes every key under prefix. */
void
it_drop(const char *prefix)
{
	redisReply *keys;
	size_t	    i;

	keys = it_cmd("KEYS %s*", prefix);
	for (i = 0; i < keys->elements; i++)
		freeReplyObject(it_cmd("DEL %s", keys->element[i]->str));
	freeReplyObject(keys);
}

/* Element i of an array reply as a string ("" for nil, ints formatted). */
const char *
it_str(const redisReply *r, size_t i)
{
	static char buf[8][64];
	static int  n;
	redisReply *e;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
		unit_fail(__FILE__, __LINE__, "no element %zu in reply", i);
	e = r->element[i];
	if (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS)
		return (e->str);
	if (e->type == REDIS_REPLY_INTEGER) {
		n = (n + 1) % 8;
		snprintf(buf[n], sizeof buf[n], "%lld", e->integer);
		return (buf[n]);
	}
	return ("");
}

void
it_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1)
		;
}

/* Enqueues spec and returns its job id (a few rotating buffers). */
const char *
it_enq(const char *P, const char *spec)
{
	static char jid_buf[4][64];
	static int  n;
	redisReply *r;

	r = it_fcall(P, "enqueue", spec, NULL);
	if (r->type != REDIS_REPLY_ARRAY)
		unit_fail(
		    __FILE__, __LINE__, "enqueue: %s", r->str ? r->str : "?");
	n = (n + 1) % 4;
	snprintf(jid_buf[n], sizeof jid_buf[n], "%s", it_str(r, 0));
	freeReplyObject(r);
	return (jid_buf[n]);
}

/* Sets a pool's capacity and VRAM budget (NULL: none). */
void
it_setcap(const char *P, const char *pool, const char *cap, const char *vram)
{
	redisReply *r = it_fcall(P, "slot_set", pool, cap, vram, NULL);

	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
}

/* Claims and expects a job; fills c. */
void
it_claim(const char *P, const char *wid, const char *pool, const char *lease,
    struct it_claimed *c)
{
	it_claim_prep(P, wid, pool, lease, "0", c);
}

/* Claims with claim's prep argument and expects a job; fills c. */
void
it_claim_prep(const char *P, const char *wid, const char *pool,
    const char *lease, const char *prep, struct it_claimed *c)
{
	redisReply *r =
	    it_fcall(P, "claim", wid, pool, lease, "16", prep, NULL);

	if (r->type != REDIS_REPLY_ARRAY || strcmp(it_str(r, 0), "job") != 0)
		unit_fail(__FILE__, __LINE__, "claim: expected a job, got %s",
		    r->type == REDIS_REPLY_ARRAY ? it_str(r, 0)
			: r->str		 ? r->str
						 : "?");
	snprintf(c->jid, sizeof c->jid, "%s", it_str(r, 1));
	snprintf(c->fence, sizeof c->fence, "%s", it_str(r, 2));
	c->attempt = atoi(it_str(r, 3));
	c->slot = atoi(it_str(r, 7));
	freeReplyObject(r);
}

/* Claims and expects no job; returns the tag (noslot or nojob). */
const char *
it_claim_none(const char *P, const char *wid, const char *pool)
{
	static char tag[16];
	redisReply *r =
	    it_fcall(P, "claim", wid, pool, "30000", "16", "0", NULL);

	ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
	snprintf(tag, sizeof tag, "%s", it_str(r, 0));
	freeReplyObject(r);
	return (tag);
}

/* Runs one test; returns 1 when it passed. */
static int
it_run(const struct unit_test *t)
{
	it_current = t->name;
	return (unit_run(NULL, t));
}

static void
it_deadline(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	event_base_loopbreak(arg);
}

/*
 * The deadline is a timer of this call's own, removed on return:
 * event_base_loopexit would leave it pending and end a later wait early.
 */
void
it_loop(struct event_base *base, int ms)
{
	struct event *deadline = evtimer_new(base, it_deadline, base);

	timer_add_ms(deadline, ms);
	event_base_dispatch(base);
	event_free(deadline);
}

int
main(int argc, char **argv)
{
	size_t i;
	int    passed = 0, failed = 0;

	log_init("itest", LL_WARNING, 0);
	for (i = 0; itests[i].name != NULL; i++) {
		if (argc > 1 && strcmp(argv[1], itests[i].name) != 0)
			continue;
		if (it_run(&itests[i]))
			passed++;
		else
			failed++;
	}
	if (it_ctx != NULL)
		redisFree(it_ctx);
	printf("%d passed, %d failed\n", passed, failed);
	return (failed == 0 && passed > 0 ? 0 : 1);
}
