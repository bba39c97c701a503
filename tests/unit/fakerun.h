/*
 * A fake owner for a run (worker/run.h): a run_env whose Redis calls and
 * ComfyUI requests are recorded, not sent, and answered by the test when
 * it chooses, so a test can order replies, socket events, cancels and lost
 * leases as the races it checks need. The event base and the thread pool
 * are real; the hooks count what the run told its owner.
 */
#ifndef COMFYQ_FAKERUN_H
#define COMFYQ_FAKERUN_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "errcode.h"
#include "httpc.h"
#include "inputs.h"
#include "rq.h"
#include "run.h"
#include "settings.h"

#define FAKE_MAX 64

enum fake_kind {
	FK_PROMPT,
	FK_HISTORY,
	FK_QUEUE,
	FK_VIEW,
	FK_UPLOAD,
	FK_OBJINFO,
	FK_JOB_FILES,
	FK_PROGRESS,
	FK_COMPLETE,
	FK_FAIL,
	FK_RELEASE,
	FK_BLOB,
	FK_NKINDS,
};

/* One request or call the run made, and what became of it. */
struct fake_call {
	enum fake_kind	 kind;
	char		 arg[128]; /* prompt id, file name, key, ... */
	char		*text;	   /* records, message, graph: a copy */
	enum errcode	 code;	   /* fail */
	int		 retryable;
	long long	 value, max; /* progress */
	char		*nodes;	     /* progress, complete, fail: a copy */
	int		 answered;
	int		 cancelled;
	httpc_cb	 http_cb;
	redisCallbackFn *redis_cb;
	void		*cb_arg;
};

struct fake_run {
	struct event_base  *base;
	struct tpool	   *pool;
	struct wf_registry *workflows;
	struct inputs_opts  inputs;
	struct worker_cfg   cfg;
	struct run_env	    env;
	cJSON		   *objinfo;

	struct fake_call calls[FAKE_MAX];
	int		 ncalls;
	int		 interrupts;
	char		 interrupted[128]; /* the last prompt id interrupted */
	int		 free_memory;
	int		 done;
	int		 wants_slot;
	int		 suspect;
	int		 gpu_faults;
};

void fake_run_init(struct fake_run *f);
void fake_run_free(struct fake_run *f);

int		  fake_count(const struct fake_run *f, enum fake_kind kind);
struct fake_call *fake_last(struct fake_run *f, enum fake_kind kind);
void fake_http_answer(struct fake_run *f, enum fake_kind kind, long status,
    const char *body, size_t len);
void fake_http_fail(struct fake_run *f, enum fake_kind kind,
    enum httpc_fail fail, const char *why);
void fake_redis_answer(
    struct fake_run *f, enum fake_kind kind, const char *status);
void fake_redis_answer_tag(
    struct fake_run *f, enum fake_kind kind, const char *tag);
int fake_redis_answer_all(
    struct fake_run *f, enum fake_kind kind, const char *status);
void fake_loop_until(struct fake_run *f, enum fake_kind kind, int count);

#endif
