/*
 * The stages of a run share this (run.c has the state machine, and which
 * file holds which stage): struct run, its states, and the calls one stage
 * makes into another. Only run*.c include it; the worker sees run.h.
 */
#ifndef COMFYQ_RUN_INT_H
#define COMFYQ_RUN_INT_H

#include <stddef.h>

#include <cjson/cJSON.h>
#include <event2/util.h>

#include "errcode.h"
#include "job.h"
#include "outputs.h"
#include "run.h"
#include "util.h"
#include "wfjob.h"

struct event;

#define RUN_MSG_MAX	    1024
#define RUN_REPORT_RETRY_MS 1000

enum run_state {
	RS_INPUTS,
	RS_AWAIT_SLOT,
	RS_UPLOAD,
	RS_RENDER,
	RS_SUBMIT,
	RS_WAIT,
	RS_CHECK,
	RS_HISTORY,
	RS_FETCH,
	RS_STORE,
	RS_REPORT,
	RS_DONE,
};

enum run_report { REPORT_FAIL, REPORT_COMPLETE, REPORT_RELEASE };

/* An input readied before the slot is held: the bytes to upload. */
struct run_input {
	unsigned char *bytes;
	size_t	       len;
};

struct run {
	const struct run_env *env;
	char		      jid[64];
	char		      fence[32];
	int		      attempt;
	char		     *model; /* the job's checkpoint key, "" none */
	struct job_spec	      spec;
	enum run_state	      state;
	struct wf_job	     *wf;
	int		      has_slot;	    /* holds a slot of the pool */
	struct run_input     *in;	    /* readied inputs, until uploaded */
	size_t		      in_i;	    /* the input being readied */
	int		      inputs_ready; /* every input is readied */
	size_t		      up_i;	    /* the input being uploaded */
	int		      objinfo_fresh; /* fetched for this run */
	cJSON		     *graph;
	struct out_expect     expect;
	char		      prompt_id[UUID_LEN];
	int		      submitted; /* ComfyUI may hold the prompt */
	int		      resubmits;
	int		      reconcile; /* CHECK after a reconnect */
	struct httpc_req     *req;	 /* the one request in flight */
	int		      refs;	 /* Redis replies pending */

	/* Seen on the socket while the POST was in flight. */
	int    early_done;
	cJSON *early_error;
	int    early_interrupted;

	long long     timeout_ms;
	long long     asked_s;	  /* the job's timeout_s, when capped */
	long long     down_since; /* ComfyUI unreachable, mono */
	struct event *wall;
	struct event *silence;
	struct event *prog_timer;
	struct event *retry;
	long long     prog_value, prog_max, prog_sent;
	char	      prog_node[64];
	int	      prog_dirty;

	/* What ComfyUI did with the prompt (run_nodes.c). */
	cJSON *nodes_ran;	  /* node ids begun, in order */
	cJSON *nodes_cached;	  /* execution_cached's, or NULL */
	char   nodes_at[64];	  /* the node an error or interrupt named */
	size_t nodes_bytes;	  /* of ids kept, against the cap */
	int    nodes_prog;	  /* nodes_ran's length at the last progress */
	int    nodes_sent;	  /* nodes_ran[0..nodes_sent) went out */
	int    nodes_cached_sent; /* nodes_cached went out */
	int    nodes_done;	  /* executing null: the prompt ended */

	struct out_list	 outs;
	int		 out_i;
	cJSON		*records;
	struct out_tmp	 tmp;	 /* the output being downloaded to disk */
	struct out_sync *sync;	 /* output-fsync: files to flush, or NULL */
	struct s3_up	*up;	 /* store s3: its upload in flight */
	char		*up_key; /* ...and its object key */

	enum run_report report;
	enum errcode	code;
	char		msg[RUN_MSG_MAX];
};

/* run.c */
void run_set_state(struct run *r, enum run_state to);
void run_cancel_req(struct run *r);
void run_stop_prompt(struct run *r);
void run_drop(struct run *r, const char *why);
void run_finish(struct run *r);
void run_free_inputs(struct run *r);
void run_unref(struct run *r);
void run_wall_cb(evutil_socket_t fd, short ev, void *arg);

/* run_prepare.c */
void run_inputs_next(struct run *r);
void run_await_slot(struct run *r);

/* run_submit.c */
void run_submit(struct run *r);
void run_exec_error(struct run *r, const cJSON *data);
void run_interrupted(struct run *r);
void run_silence_cb(evutil_socket_t fd, short ev, void *arg);

/* run_fetch.c */
void	     run_fetch_history(struct run *r);
const cJSON *run_history_get(const cJSON *root, const char *prompt_id);
cJSON *run_history_parse(const char *body, size_t len, const char *prompt_id);
void   run_history_entry(struct run *r, const cJSON *e);

/* run_nodes.c */
void  run_nodes_event(struct run *r, const char *type, const cJSON *data);
void  run_nodes_history(struct run *r, const cJSON *entry);
char *run_nodes_delta(struct run *r);
char *run_nodes_all(const struct run *r, int failed);

/* run_report.c */
void run_end(struct run *r, enum errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void run_begin_report(struct run *r, enum run_report how);
void run_progress(struct run *r, const cJSON *data);
void run_retry_cb(evutil_socket_t fd, short ev, void *arg);
void run_prog_timer_cb(evutil_socket_t fd, short ev, void *arg);

#endif
