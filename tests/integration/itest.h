/*
 * Integration test helpers: a runner over a test table (the same ASSERT
 * macros as the unit tests), a blocking connection to the redis-server named
 * by COMFYQ_TEST_REDIS_URL, a fresh queue per test, and short ways to call
 * the functions library and read what it wrote.
 */
#ifndef COMFYQ_ITEST_H
#define COMFYQ_ITEST_H

#include <hiredis/hiredis.h>

#include "../unit/unit.h"

extern const struct unit_test itests[];

redisContext *it_redis(void);
redisContext *it_redis_new(void);
const char   *it_queue(const char *);
redisReply   *it_fcall(const char *prefix, const char *fn, ...);
redisReply   *it_cmd(const char *, ...);
const char   *it_hget(const char *prefix, const char *jid, const char *field);
const char   *it_get(const char *, ...);
long long     it_stat(const char *prefix, const char *name);
long long     it_int(const char *, ...);
int	      it_events(const char *prefix, const char *type, const char *jid);
int	      it_keys(const char *);
const char   *it_str(const redisReply *, size_t);
void	      it_sleep_ms(int);

/* Runs base until a callback breaks it or ms pass (its own timer). */
struct event_base;
void it_loop(struct event_base *base, int ms);

/* A snapshot of every key of a queue: names sorted, each with its TYPE and
 * DUMP, to tell whether a call wrote anything. */
struct it_snap {
	size_t	n;
	char  **names;
	char  **vals; /* "<type>\n" then the DUMP bytes */
	size_t *lens;
};

void	    it_snap_take(const char *, struct it_snap *);
void	    it_snap_free(struct it_snap *);
const char *it_snap_diff(const struct it_snap *a, const struct it_snap *b);
void	    it_drop(const char *);

/* Jobs and slots, the way a test drives them (see itest.c). */
struct it_claimed {
	char jid[64];
	char fence[32];
	int  attempt;
	int  slot; /* 1: holds a slot; 0: claimed to fetch first */
};

const char *it_enq(const char *P, const char *spec);
void	    it_setcap(
	   const char *P, const char *pool, const char *cap, const char *vram);
void	    it_claim(const char *P, const char *wid, const char *pool,
	   const char *lease, struct it_claimed *c);
void	    it_claim_prep(const char *P, const char *wid, const char *pool,
	   const char *lease, const char *prep, struct it_claimed *c);
const char *it_claim_none(const char *P, const char *wid, const char *pool);

#define ASSERT_STATUS(r, s)                                                    \
	do {                                                                   \
		unit_checks++;                                                 \
		if ((r) == NULL || (r)->type != REDIS_REPLY_STATUS ||          \
		    strcmp((r)->str, (s)) != 0)                                \
			unit_fail(__FILE__, __LINE__,                          \
			    "expected status %s, "                             \
			    "got type %d '%s'",                                \
			    (s), (r) ? (r)->type : -1,                         \
			    (r) && (r)->str ? (r)->str : "");                  \
	} while (0)
#define ASSERT_ERROR(r, s)                                                     \
	do {                                                                   \
		unit_checks++;                                                 \
		if ((r) == NULL || (r)->type != REDIS_REPLY_ERROR ||           \
		    strcmp((r)->str, (s)) != 0)                                \
			unit_fail(__FILE__, __LINE__,                          \
			    "expected error '%s', "                            \
			    "got type %d '%s'",                                \
			    (s), (r) ? (r)->type : -1,                         \
			    (r) && (r)->str ? (r)->str : "");                  \
	} while (0)

#endif
