/*
 * Execution: one prompt at a time, one state machine per prompt, the way
 * ComfyUI's PromptExecutor and main.py's prompt_worker run it.
 *
 *   PICK -> (wait load) -> LOADED -> STEP x steps -> FINISH -> PICK ...
 *                                     `-> HUNG (a hang fault)
 *
 * PICK takes the next node from the execution list (ComfyUI's
 * ExecutionList: a topological dissolve from the output nodes that skips
 * cached ancestors, preferring output nodes and their direct inputs), sends
 * progress_state and `executing`, and checks the interrupt flag. A sampler
 * then takes its steps, each checking the flag and sending progress_state +
 * progress, and FINISH computes the outputs (work.c), writes files, sends
 * `executed` and caches the result. Waits are libevent timers; with no
 * delay configured the whole prompt runs in one callback.
 *
 * The end is task_done order: execution_success/error/interrupted, the
 * history entry, `status`, then `executing` with node null. Events go to
 * the prompt's client_id only; a prompt without one gets only the
 * broadcast ones (progress, progress_state, execution_interrupted).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "sim.h"
#include "util.h"
#include "xmalloc.h"

#define HANG_TICK_MS 20

static const struct timeval crash_tv = { 0, 20000 };

enum run_state {
	RS_PICK,
	RS_LOADED,
	RS_STEP,
	RS_HUNG,
	RS_FINISH,
};

static const char *const run_state_names[] = {
	[RS_PICK] = "pick",
	[RS_LOADED] = "loaded",
	[RS_STEP] = "step",
	[RS_HUNG] = "hung",
	[RS_FINISH] = "finish",
};

struct adj {
	int *v;
	int  n;
};

struct run {
	struct prompt *p;
	struct graph  *g;
	enum run_state state;
	char (*sig)[SIG_LEN];
	struct node_result **res;
	int		    *pending;
	int		    *order; /* pending nodes in insertion order */
	int		     norder;
	int		    *nblock;
	struct adj	    *blocking;
	int		     cur;
	struct work	     w;
	int		     step;
	struct exec_fault    f;
	int		     target[FX_N];
	int		     has_client; /* extra_data has a client_id */
	cJSON		    *messages;
	cJSON		    *outputs;
	cJSON		    *meta;
	cJSON		    *executed;
	cJSON		    *progress;
};

static struct run   *run;
static struct event *run_timer, *kick_ev;
static int	     interrupted;   /* nodes.interrupt_processing() */
static char	    *server_client; /* server.client_id, kept after a run */
static char	    *last_node;	    /* server.last_node_id */
static int	     flag_unload, flag_free;

static void run_drive(void);

static void
run_set_state(struct run *r, enum run_state to)
{
	log_debug("job=%s %s -> %s", r->p->id, run_state_names[r->state],
	    run_state_names[to]);
	r->state = to;
}

/* The socket this prompt's events go to; NULL broadcasts. */
static const char *
run_sid(const struct run *r)
{
	return (r->has_client ? r->p->client_id : NULL);
}

/* An event for the client only (executing, executed, ...). */
static void
run_send(struct run *r, const char *type, cJSON *data)
{
	if (r->has_client && r->p->client_id != NULL)
		notify_send(r->p->client_id, type, data);
	else
		cJSON_Delete(data);
}

/* An event for the client, or everyone when there is none (progress). */
static void
run_send_any(struct run *r, const char *type, cJSON *data)
{
	if (r->has_client && r->p->client_id == NULL)
		cJSON_Delete(data);
	else
		notify_send(run_sid(r), type, data);
}

/* PromptExecutor.add_message(): kept for history, sent as an event. */
static void
run_message(struct run *r, const char *type, cJSON *data, int broadcast)
{
	cJSON *pair = cJSON_CreateArray();

	cJSON_AddNumberToObject(data, "timestamp", (double)clock_wall_ms());
	cJSON_AddItemToArray(pair, cJSON_CreateString(type));
	cJSON_AddItemToArray(pair, cJSON_Duplicate(data, 1));
	cJSON_AddItemToArray(r->messages, pair);
	if (r->has_client || broadcast)
		run_send_any(r, type, data);
	else
		cJSON_Delete(data);
}

static cJSON *
run_data(const struct run *r)
{
	cJSON *d = cJSON_CreateObject();

	cJSON_AddStringToObject(d, "prompt_id", r->p->id);
	return (d);
}

/* progress_state: every node that has started, with its progress. */
static void
run_progress_state(
    struct run *r, const char *id, const char *state, double value, double max)
{
	cJSON *e, *d, *nodes, *n;

	if ((e = cJSON_GetObjectItemCaseSensitive(r->progress, id)) == NULL)
		e = cJSON_AddObjectToObject(r->progress, id);
	cJSON_DeleteItemFromObjectCaseSensitive(e, "value");
	cJSON_DeleteItemFromObjectCaseSensitive(e, "max");
	cJSON_DeleteItemFromObjectCaseSensitive(e, "state");
	cJSON_AddNumberToObject(e, "value", value);
	cJSON_AddNumberToObject(e, "max", max);
	cJSON_AddStringToObject(e, "state", state);
	if (!sim.cfg.progress_state)
		return;
	d = run_data(r);
	nodes = cJSON_AddObjectToObject(d, "nodes");
	cJSON_ArrayForEach(e, r->progress)
	{
		n = cJSON_AddObjectToObject(nodes, e->string);
		cJSON_AddItemToObject(n, "value",
		    cJSON_Duplicate(
			cJSON_GetObjectItemCaseSensitive(e, "value"), 0));
		cJSON_AddItemToObject(n, "max",
		    cJSON_Duplicate(
			cJSON_GetObjectItemCaseSensitive(e, "max"), 0));
		cJSON_AddItemToObject(n, "state",
		    cJSON_Duplicate(
			cJSON_GetObjectItemCaseSensitive(e, "state"), 0));
		cJSON_AddStringToObject(n, "node_id", e->string);
		cJSON_AddStringToObject(n, "prompt_id", r->p->id);
		cJSON_AddStringToObject(n, "display_node_id", e->string);
		cJSON_AddNullToObject(n, "parent_node_id");
		cJSON_AddStringToObject(n, "real_node_id", e->string);
	}
	run_send_any(r, "progress_state", d);
}

static void
adj_add(struct adj *a, int v)
{
	int k;

	for (k = 0; k < a->n; k++)
		if (a->v[k] == v)
			return;
	a->v = xrealloc(a->v, (size_t)(a->n + 1) * sizeof *a->v);
	a->v[a->n++] = v;
}

static int
run_cached(const struct run *r, int i)
{
	return (cache_get(r->sig[i]) != NULL);
}

/* ExecutionList.add_node(): the node and its uncached ancestors, then
 * add_strong_link() for every link found on the way. */
static void
run_add_node(struct run *r, int start)
{
	int	   *stack = NULL, *links = NULL, sp = 0, nlinks = 0;
	int	    i, s, k, slot, before;
	cJSON	   *in;
	const char *src;

	stack = xrealloc(stack, sizeof *stack);
	stack[sp++] = start;
	while (sp > 0) {
		i = stack[--sp];
		if (r->pending[i])
			continue;
		r->pending[i] = 1;
		r->order[r->norder++] = i;
		r->nblock[i] = 0;
		r->blocking[i].n = 0;
		cJSON_ArrayForEach(in, r->g->v[i].inputs)
		{
			if (!graph_link(in, &src, &slot) ||
			    (s = graph_find(r->g, src)) < 0)
				continue;
			stack =
			    xrealloc(stack, (size_t)(sp + 1) * sizeof *stack);
			if (!run_cached(r, s))
				stack[sp++] = s;
			links = xrealloc(
			    links, (size_t)(nlinks + 2) * sizeof *links);
			links[nlinks++] = s;
			links[nlinks++] = i;
		}
	}
	for (k = 0; k < nlinks; k += 2) {
		s = links[k];
		i = links[k + 1];
		if (run_cached(r, s))
			continue;
		before = r->blocking[s].n;
		adj_add(&r->blocking[s], i);
		if (r->blocking[s].n > before)
			r->nblock[i]++;
	}
	free(links);
	free(stack);
}

static int
run_is_output(const struct run *r, int i)
{
	return (r->g->v[i].cls->output_node);
}

static int
run_blocks_output(const struct run *r, int i, int depth)
{
	int k;

	for (k = 0; k < r->blocking[i].n; k++) {
		int b = r->blocking[i].v[k];

		if (depth == 0 ? run_is_output(r, b)
			       : run_blocks_output(r, b, depth - 1))
			return (1);
	}
	return (0);
}

/* ux_friendly_pick_node() over the ready nodes; -1 if none is ready. */
static int
run_pick(const struct run *r)
{
	int k, pass, i, first = -1;

	for (pass = 0; pass < 3; pass++)
		for (k = 0; k < r->norder; k++) {
			i = r->order[k];
			if (!r->pending[i] || r->nblock[i] != 0)
				continue;
			if (first == -1)
				first = i;
			if (pass == 0 ? run_is_output(r, i)
				      : run_blocks_output(r, i, pass - 1))
				return (i);
		}
	return (first);
}

static void
run_complete_node(struct run *r, int i)
{
	int k;

	r->pending[i] = 0;
	for (k = 0; k < r->blocking[i].n; k++)
		r->nblock[r->blocking[i].v[k]]--;
	r->blocking[i].n = 0;
}

/* The node a hang/oom/crash/error fault hits: the named node or class,
 * else the first sampler, decoder, other node, output node that runs. */
static int
run_fault_target(const struct run *r, const char *want)
{
	static const int prefer[] = { NK_KSAMPLER, NK_VAE_DECODE, -1, -2 };
	size_t		 i, k;

	for (k = 0; k < sizeof prefer / sizeof prefer[0]; k++)
		for (i = 0; i < r->g->n; i++) {
			const struct gnode *n = &r->g->v[i];

			if (!r->pending[i] || run_cached(r, (int)i))
				continue;
			if (want[0] != '\0') {
				if (strcmp(n->id, want) == 0 ||
				    strcmp(n->cls->name, want) == 0)
					return ((int)i);
				continue;
			}
			if (prefer[k] >= 0 ? (int)n->cls->kind == prefer[k]
				: prefer[k] == -1 ? !n->cls->output_node
						  : 1)
				return ((int)i);
		}
	return (-1);
}

static void
run_free(struct run *r)
{
	size_t i;

	for (i = 0; i < r->g->n; i++) {
		result_unref(r->res[i]);
		free(r->blocking[i].v);
	}
	free(r->res);
	free(r->pending);
	free(r->order);
	free(r->nblock);
	free(r->blocking);
	free(r->sig);
	cJSON_Delete(r->messages);
	cJSON_Delete(r->outputs);
	cJSON_Delete(r->meta);
	cJSON_Delete(r->executed);
	cJSON_Delete(r->progress);
	prompt_free(r->p);
	free(r);
}

static void
run_apply_flags(void)
{
	if (flag_unload || flag_free)
		work_unload_models();
	if (flag_free)
		cache_reset();
	flag_unload = flag_free = 0;
}

/* task_done(): history, status, then `executing` null. */
static void
run_end(struct run *r, int success)
{
	cJSON *entry = cJSON_CreateObject(), *status, *d;

	free(last_node);
	last_node = NULL;
	cJSON_AddItemToObject(entry, "prompt", prompt_item(r->p, 0));
	cJSON_AddItemToObject(entry, "outputs", r->outputs);
	status = cJSON_AddObjectToObject(entry, "status");
	cJSON_AddStringToObject(
	    status, "status_str", success ? "success" : "error");
	cJSON_AddBoolToObject(status, "completed", success);
	cJSON_AddItemToObject(status, "messages", r->messages);
	cJSON_AddItemToObject(entry, "meta", r->meta);
	r->outputs = r->messages = r->meta = NULL;
	history_put(r->p->id, entry);
	log_job(LL_VERBOSE, r->p->id, "%s", success ? "success" : "error");
	run = NULL;
	queue_done();
	notify_status();
	d = cJSON_CreateObject();
	cJSON_AddNullToObject(d, "node");
	cJSON_AddStringToObject(d, "prompt_id", r->p->id);
	run_send(r, "executing", d);
	if (r->f.fired & FXB(FX_SILENCE))
		notify_unmute();
	run_free(r);
	run_apply_flags();
	exec_kick();
}

static cJSON *
run_current_inputs(const struct run *r, int i)
{
	const struct gnode *n = &r->g->v[i];
	const struct value *v;
	cJSON		   *ci = cJSON_CreateObject(), *in, *l;
	const char	   *src;
	char		   *s;
	int		    slot, si;

	cJSON_ArrayForEach(in, n->inputs)
	{
		if (node_input_find(n->cls, in->string) == NULL)
			continue;
		l = cJSON_AddArrayToObject(ci, in->string);
		if (graph_link(in, &src, &slot)) {
			si = graph_find(r->g, src);
			v = si >= 0 && r->res[si] != NULL && slot >= 0 &&
				slot < r->res[si]->n
			    ? &r->res[si]->out[slot]
			    : NULL;
			cJSON_AddItemToArray(l,
			    cJSON_CreateString(
				v != NULL ? value_repr(v) : "None"));
		} else if (cJSON_IsObject(in) || cJSON_IsArray(in)) {
			s = py_str(in);
			cJSON_AddItemToArray(l, cJSON_CreateString(s));
			free(s);
		} else
			cJSON_AddItemToArray(l, cJSON_Duplicate(in, 1));
	}
	return (ci);
}

/* handle_execution_error() for an exception in node i. */
static void
run_error(struct run *r, int i, const struct pyexc *exc)
{
	static const char oom_tips[] =
	    "This error means you ran out of memory on your GPU.\n\nTIPS: If "
	    "the workflow worked before you might have accidentally set the "
	    "batch_size to a large number.";
	int    oom = strstr(exc->type, "OutOfMemoryError") != NULL;
	cJSON *d = run_data(r), *tb, *outs;
	char  *msg;
	size_t k;

	cJSON_AddStringToObject(d, "node_id", r->g->v[i].id);
	cJSON_AddStringToObject(d, "node_type", r->g->v[i].cls->name);
	cJSON_AddItemToObject(d, "executed", cJSON_Duplicate(r->executed, 1));
	msg = xasprintf("%s\n%s", exc->msg, oom ? oom_tips : "");
	cJSON_AddStringToObject(d, "exception_message", msg);
	free(msg);
	cJSON_AddStringToObject(d, "exception_type", exc->type);
	tb = cJSON_AddArrayToObject(d, "traceback");
	cJSON_AddItemToArray(tb,
	    cJSON_CreateString("  File \"/ComfyUI/execution.py\", line 496, in "
			       "execute\n    output_data, output_ui, "
			       "has_subgraph, has_pending_tasks = await "
			       "get_output_data(prompt_id, unique_id, obj, "
			       "input_data_all, execution_block_cb=execution_"
			       "block_cb, pre_execute_cb=pre_execute_cb, "
			       "v3_data=v3_data)\n"));
	cJSON_AddItemToObject(d, "current_inputs", run_current_inputs(r, i));
	outs = cJSON_AddArrayToObject(d, "current_outputs");
	for (k = 0; k < r->g->n; k++)
		cJSON_AddItemToArray(outs, cJSON_CreateString(r->g->v[k].id));
	log_job(LL_NOTICE, r->p->id, "node %s (%s): %s: %s", r->g->v[i].id,
	    r->g->v[i].cls->name, exc->type, exc->msg);
	run_message(r, "execution_error", d, 0);
	if (oom)
		work_unload_models();
	run_end(r, 0);
}

static void
run_interrupted(struct run *r, int i)
{
	cJSON *d = run_data(r);

	cJSON_AddStringToObject(d, "node_id", r->g->v[i].id);
	cJSON_AddStringToObject(d, "node_type", r->g->v[i].cls->name);
	cJSON_AddItemToObject(d, "executed", cJSON_Duplicate(r->executed, 1));
	log_job(LL_VERBOSE, r->p->id, "interrupted at node %s", r->g->v[i].id);
	run_message(r, "execution_interrupted", d, 1);
	run_end(r, 0);
}

/* Waits ms, then the driver goes on; 1 when there is nothing to wait. */
static int
run_wait(long long ms)
{
	struct timeval tv;

	if (ms <= 0)
		return (1);
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(run_timer, &tv);
	return (0);
}

/* Records the UI output of node i for history and sends `executed`:
 * a cached output node always (its old output, or null), a node that ran
 * only when it has a non-empty UI dict. */
static void
run_ui(struct run *r, int i, const struct node_result *res, int cached)
{
	const char *id = r->g->v[i].id;
	cJSON	   *d, *m;

	if (!cached && (res->ui == NULL || res->ui->child == NULL))
		return;
	if (res->ui != NULL) {
		cJSON_DeleteItemFromObjectCaseSensitive(r->outputs, id);
		cJSON_AddItemToObject(
		    r->outputs, id, cJSON_Duplicate(res->ui, 1));
		m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "node_id", id);
		cJSON_AddStringToObject(m, "display_node", id);
		cJSON_AddNullToObject(m, "parent_node");
		cJSON_AddStringToObject(m, "real_node_id", id);
		cJSON_DeleteItemFromObjectCaseSensitive(r->meta, id);
		cJSON_AddItemToObject(r->meta, id, m);
	}
	if (!r->has_client)
		return;
	d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "node", id);
	cJSON_AddStringToObject(d, "display_node", id);
	cJSON_AddItemToObject(d, "output",
	    res->ui != NULL ? cJSON_Duplicate(res->ui, 1) : cJSON_CreateNull());
	cJSON_AddStringToObject(d, "prompt_id", r->p->id);
	run_send(r, "executed", d);
}

static void
run_crash_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	_exit(70);
}

/* Node-level faults at the start of node i: 0 none, 1 the prompt ended
 * (r is gone), 2 the node hangs. */
static int
run_node_faults(struct run *r, int i)
{
	struct pyexc exc;

	if (r->target[FX_CRASH] == i) {
		/* die a moment later, mid-node, once replies are flushed */
		log_warnx(
		    "job=%s fault: crash at node %s", r->p->id, r->g->v[i].id);
		if (event_base_once(sim.base, -1, EV_TIMEOUT, run_crash_cb,
			NULL, &crash_tv) == -1)
			_exit(70);
		run_set_state(r, RS_HUNG);
		return (2);
	}
	if (r->target[FX_WS_DROP] == i && r->p->client_id != NULL)
		ws_server_drop(r->p->client_id);
	if (r->target[FX_HANG] == i && r->w.steps == 0) {
		run_set_state(r, RS_HUNG);
		return (2);
	}
	if (r->target[FX_OOM] == i) {
		py_exc(&exc, "torch.OutOfMemoryError", "Allocation on device ");
		run_error(r, i, &exc);
		return (1);
	}
	if (r->target[FX_ERROR] == i) {
		py_exc(&exc, r->f.error_type, "%s", r->f.error_msg);
		run_error(r, i, &exc);
		return (1);
	}
	if ((r->f.fired & FXB(FX_NO_FACE)) &&
	    r->g->v[i].cls->kind == NK_FACEID) {
		py_exc(&exc, "Exception", "InsightFace: No face detected.");
		run_error(r, i, &exc);
		return (1);
	}
	return (0);
}

/* PICK: the next node, or the end of the prompt. 1: go on at once. */
static int
run_do_pick(struct run *r)
{
	struct node_result *c;
	struct pyexc	    exc;
	const char	   *id;
	cJSON		   *d;
	int		    i;

	if ((i = run_pick(r)) == -1) {
		run_message(r, "execution_success", run_data(r), 0);
		run_end(r, 1);
		return (0);
	}
	r->cur = i;
	id = r->g->v[i].id;
	if ((c = cache_get(r->sig[i])) != NULL) {
		run_ui(r, i, c, 1);
		result_unref(r->res[i]);
		r->res[i] = result_ref(c);
		run_progress_state(r, id, "finished", 1, 1);
		run_complete_node(r, i);
		return (1);
	}
	run_progress_state(r, id, "running", 0, 1);
	if (r->has_client) {
		free(last_node);
		last_node = xstrdup(id);
		d = cJSON_CreateObject();
		cJSON_AddStringToObject(d, "node", id);
		cJSON_AddStringToObject(d, "display_node", id);
		cJSON_AddStringToObject(d, "prompt_id", r->p->id);
		run_send(r, "executing", d);
	}
	if (interrupted) {
		run_interrupted(r, i);
		return (0);
	}
	if (work_plan(r->g, i, r->res, &r->w, &exc) == -1) {
		run_error(r, i, &exc);
		return (0);
	}
	r->step = 0;
	switch (run_node_faults(r, i)) {
	case 1:
		return (0);
	case 2:
		return (run_wait(HANG_TICK_MS));
	}
	run_set_state(r, RS_LOADED);
	return (run_wait(r->w.load_ms));
}

/* One step of a sampler: the progress hook. */
static int
run_do_step(struct run *r)
{
	const char *id = r->g->v[r->cur].id;
	cJSON	   *d;

	if (interrupted) {
		run_interrupted(r, r->cur);
		return (0);
	}
	r->step++;
	run_progress_state(r, id, "running", r->step, r->w.steps);
	d = cJSON_CreateObject();
	cJSON_AddNumberToObject(d, "value", r->step);
	cJSON_AddNumberToObject(d, "max", r->w.steps);
	cJSON_AddStringToObject(d, "prompt_id", r->p->id);
	cJSON_AddStringToObject(d, "node", id);
	run_send_any(r, "progress", d);
	if (r->target[FX_HANG] == r->cur && r->step >= r->f.hang_step) {
		run_set_state(r, RS_HUNG);
		return (run_wait(HANG_TICK_MS));
	}
	if (r->step >= r->w.steps) {
		run_set_state(r, RS_FINISH);
		return (1);
	}
	return (run_wait(r->w.progress_only ? 0 : r->w.step_ms));
}

static int
run_do_finish(struct run *r)
{
	struct node_result *res;
	struct pyexc	    exc;
	int		    i = r->cur;

	if (work_finish(r->g, i, r->res, r->p->id, &r->f, &res, &exc) == -1) {
		run_error(r, i, &exc);
		return (0);
	}
	result_unref(r->res[i]);
	r->res[i] = res;
	run_ui(r, i, res, 0);
	cache_put(r->sig[i], res);
	run_progress_state(r, r->g->v[i].id, "finished",
	    r->w.steps ? r->w.steps : 1, r->w.steps ? r->w.steps : 1);
	cJSON_AddItemToArray(r->executed, cJSON_CreateString(r->g->v[i].id));
	run_complete_node(r, i);
	run_set_state(r, RS_PICK);
	return (1);
}

/* Runs the state machine until it has to wait or the prompt ends. */
static void
run_drive(void)
{
	struct run *r;
	int	    go = 1;

	while (go && (r = run) != NULL) {
		switch (r->state) {
		case RS_PICK:
			go = run_do_pick(r);
			break;
		case RS_LOADED:
			if (r->w.steps > 0) {
				run_set_state(r, RS_STEP);
				go = run_wait(
				    r->w.progress_only ? 0 : r->w.step_ms);
			} else {
				run_set_state(r, RS_FINISH);
				go = 1;
			}
			break;
		case RS_STEP:
			go = run_do_step(r);
			break;
		case RS_HUNG:
			if (interrupted) {
				run_interrupted(r, r->cur);
				go = 0;
			} else
				go = run_wait(HANG_TICK_MS);
			break;
		case RS_FINISH:
			go = run_do_finish(r);
			break;
		}
	}
}

static void
run_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	run_drive();
}

/* Starts the next pending prompt. */
static void
run_start(struct prompt *p)
{
	struct run *r = xcalloc(1, sizeof *r);
	cJSON	   *cached, *o;
	size_t	    i, n = p->g->n;
	int	    k, idx;

	r->p = p;
	r->g = p->g;
	r->cur = -1;
	r->state = RS_PICK;
	r->sig = xcalloc(n + 1, sizeof *r->sig);
	r->res = xcalloc(n + 1, sizeof *r->res);
	r->pending = xcalloc(n + 1, sizeof *r->pending);
	r->order = xcalloc(n + 1, sizeof *r->order);
	r->nblock = xcalloc(n + 1, sizeof *r->nblock);
	r->blocking = xcalloc(n + 1, sizeof *r->blocking);
	r->messages = cJSON_CreateArray();
	r->outputs = cJSON_CreateObject();
	r->meta = cJSON_CreateObject();
	r->executed = cJSON_CreateArray();
	r->progress = cJSON_CreateObject();
	r->has_client =
	    cJSON_GetObjectItemCaseSensitive(p->extra, "client_id") != NULL;
	run = r;
	interrupted = 0;
	free(server_client);
	server_client = p->client_id != NULL ? xstrdup(p->client_id) : NULL;
	faults_plan(&r->f);
	if ((r->f.fired & FXB(FX_SILENCE)) && p->client_id != NULL)
		notify_mute(p->client_id);
	log_job(LL_VERBOSE, p->id, "start (%zu nodes)", n);
	run_message(r, "execution_start", run_data(r), 0);
	cache_set_prompt(r->g, r->sig);
	cached = cJSON_CreateArray();
	for (i = 0; i < n; i++) {
		if (!run_cached(r, (int)i))
			continue;
		/* what the execution list reads from the cache */
		r->res[i] = result_ref(cache_get(r->sig[i]));
		cJSON_AddItemToArray(cached, cJSON_CreateString(r->g->v[i].id));
	}
	o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "nodes", cached);
	cJSON_AddStringToObject(o, "prompt_id", p->id);
	run_message(r, "execution_cached", o, 0);
	cJSON_ArrayForEach(o, p->outputs)
	{
		if ((idx = graph_find(r->g, o->valuestring)) >= 0)
			run_add_node(r, idx);
	}
	for (k = 0; k < FX_N; k++)
		r->target[k] = -1;
	for (k = FX_CRASH; k <= FX_WS_DROP; k++)
		if ((r->f.fired & FXB(k)) && k != FX_NO_FACE)
			r->target[k] = run_fault_target(r, r->f.node[k]);
	run_drive();
}

static void
run_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct prompt *p;

	(void)fd;
	(void)what;
	(void)arg;
	if (run == NULL && (p = queue_get()) != NULL)
		run_start(p);
}

/* Starts the next prompt on the loop if none is running. */
void
exec_kick(void)
{
	if (kick_ev == NULL) {
		kick_ev = event_new(sim.base, -1, 0, run_kick_cb, NULL);
		run_timer = evtimer_new(sim.base, run_timer_cb, NULL);
		if (kick_ev == NULL || run_timer == NULL)
			fatalx("exec: cannot create events");
	}
	if (run == NULL)
		event_active(kick_ev, EV_TIMEOUT, 1);
}

/* POST /interrupt: global (NULL) or only if that prompt is running. */
void
exec_interrupt(const char *prompt_id)
{
	if (prompt_id != NULL &&
	    (run == NULL || strcmp(run->p->id, prompt_id) != 0)) {
		log_info(
		    "prompt %s is not running, interrupt skipped", prompt_id);
		return;
	}
	interrupted = 1;
}

/* POST /free: acted on between prompts, like prompt_worker's flags. */
void
exec_free_flags(int unload_models, int free_memory)
{
	flag_unload |= unload_models;
	flag_free |= free_memory;
	if (run == NULL)
		run_apply_flags();
}

/* On reconnect, the node the socket's own running prompt is at. */
const char *
exec_reconnect_node(const char *sid)
{
	if (server_client != NULL && strcmp(server_client, sid) == 0)
		return (last_node);
	return (NULL);
}

void
exec_shutdown(void)
{
	if (run != NULL) {
		run_free(run);
		run = NULL;
	}
	if (run_timer != NULL)
		event_free(run_timer);
	if (kick_ev != NULL)
		event_free(kick_ev);
	run_timer = kick_ev = NULL;
	free(server_client);
	free(last_node);
	server_client = last_node = NULL;
}
