/*
 * The running prompt, shared by exec.c (its state machine) and report.c
 * (what it tells the client and writes to history). Private to those two.
 */
#ifndef COMFYQ_SIM_EXEC_H
#define COMFYQ_SIM_EXEC_H

#include "sim.h"

enum run_state {
	RS_PICK,   /* choose the next node, or end */
	RS_LOADED, /* the node's load wait is over */
	RS_STEP,   /* one sampler step is due */
	RS_HUNG,   /* a hang fault: only an interrupt ends it */
	RS_FINISH, /* compute the node's outputs */
};

struct run {
	struct prompt *p;
	struct graph  *g;
	enum run_state state;
	char (*sig)[SIG_LEN];	     /* cache keys */
	int		    *cached; /* served from the cache */
	struct node_result **res;    /* outputs known so far */
	struct execlist	    *el;
	int		     cur; /* the node being worked */
	struct work	     w;
	int		     step;
	struct exec_fault    f;
	int		     target[FX_N]; /* node a fault hits, or -1 */
	int		     has_client;   /* extra_data has a client_id */
	cJSON		    *messages;	   /* status.messages of history */
	cJSON		    *outputs;
	cJSON		    *meta;
	cJSON		    *executed;
	struct omap	    *progress; /* progress_state registry: node id
					* -> struct pstate, started first */
};

struct pstate {
	double	    value, max;
	const char *state; /* "running" or "finished" */
};

cJSON *report_data(const struct run *);
void   report_send(struct run *, const char *, cJSON *);
void   report_send_any(struct run *, const char *, cJSON *);
void   report_message(struct run *, const char *, cJSON *, int broadcast);
void   report_progress(
      struct run *r, const char *id, const char *state, double value, double max);
void   report_ui(struct run *, int, const struct node_result *, int cached);
void   report_error(struct run *, int, const struct pyexc *);
void   report_interrupted(struct run *, int);
cJSON *report_history(struct run *, int success);

#endif
