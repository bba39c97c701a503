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
 * delay configured the prompt runs in callbacks of up to RUN_SLICE_MS.
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

#include "exec.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#define HANG_TICK_MS 20
#define RUN_SLICE_MS 20 /* most time one callback runs nodes without a wait */

static const struct timeval crash_tv = { 0, 20000 };

static const char *const run_state_names[] = {
	[RS_PICK] = "pick",
	[RS_LOADED] = "loaded",
	[RS_STEP] = "step",
	[RS_HUNG] = "hung",
	[RS_FINISH] = "finish",
};

static struct run   *run;
static struct event *run_timer, *kick_ev;
static int	     interrupted;   /* nodes.interrupt_processing() */
static char	    *server_client; /* server.client_id, kept after a run */
static char	    *last_node;	    /* server.last_node_id */
static int	     flag_unload, flag_free;

static void
run_set_state(struct run *r, enum run_state to)
{
	log_debug("job=%s %s -> %s", r->p->id, run_state_names[r->state],
	    run_state_names[to]);
	r->state = to;
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

			if (!execlist_pending(r->el, (int)i) || r->cached[i])
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

	for (i = 0; i < r->g->n; i++)
		result_unref(r->res[i]);
	free(r->res);
	execlist_free(r->el);
	free(r->cached);
	free(r->sig);
	cJSON_Delete(r->messages);
	cJSON_Delete(r->outputs);
	cJSON_Delete(r->meta);
	cJSON_Delete(r->executed);
	omap_free(r->progress, free);
	prompt_free(r->p);
	free(r);
}

static void
run_apply_flags(void)
{
	if (flag_unload || flag_free) {
		work_unload_models();
		log_info("free: models unloaded%s",
		    flag_free ? ", caches dropped" : "");
	}
	if (flag_free)
		cache_reset();
	flag_unload = flag_free = 0;
}

/* task_done(): history, status, then `executing` null. */
static void
run_end(struct run *r, int success)
{
	cJSON *d;

	stats_prompt_end();
	free(last_node);
	last_node = NULL;
	history_put(r->p->id, report_history(r, success));
	log_job(LL_VERBOSE, r->p->id, "%s", success ? "success" : "error");
	run = NULL;
	queue_done();
	notify_status();
	d = cJSON_CreateObject();
	cJSON_AddNullToObject(d, "node");
	cJSON_AddStringToObject(d, "prompt_id", r->p->id);
	report_send(r, "executing", d);
	if (r->f.fired & FXB(FX_SILENCE))
		notify_unmute();
	run_free(r);
	run_apply_flags();
	exec_kick();
}

/* An exception in node i ends the prompt. */
static void
run_error(struct run *r, int i, const struct pyexc *exc)
{
	report_error(r, i, exc);
	if (strstr(exc->type, "OutOfMemoryError") != NULL)
		work_unload_models();
	run_end(r, 0);
}

static void
run_interrupted(struct run *r, int i)
{
	report_interrupted(r, i);
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

	if ((i = execlist_pick(r->el)) == -1 && execlist_left(r->el) > 0) {
		py_exc(&exc, "graph.DependencyCycleError",
		    "Dependency cycle detected");
		run_error(r, r->cur >= 0 ? r->cur : 0, &exc);
		return (0);
	}
	if (i == -1) {
		report_message(r, "execution_success", report_data(r), 0);
		run_end(r, 1);
		return (0);
	}
	r->cur = i;
	id = r->g->v[i].id;
	if ((c = cache_get(r->sig[i])) != NULL) {
		report_ui(r, i, c, 1);
		result_unref(r->res[i]);
		r->res[i] = result_ref(c);
		report_progress(r, id, "finished", 1, 1);
		execlist_done(r->el, i);
		return (1);
	}
	report_progress(r, id, "running", 0, 1);
	if (r->has_client) {
		free(last_node);
		last_node = xstrdup(id);
		d = cJSON_CreateObject();
		cJSON_AddStringToObject(d, "node", id);
		cJSON_AddStringToObject(d, "display_node", id);
		cJSON_AddStringToObject(d, "prompt_id", r->p->id);
		report_send(r, "executing", d);
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
	report_progress(r, id, "running", r->step, r->w.steps);
	d = cJSON_CreateObject();
	cJSON_AddNumberToObject(d, "value", r->step);
	cJSON_AddNumberToObject(d, "max", r->w.steps);
	cJSON_AddStringToObject(d, "prompt_id", r->p->id);
	cJSON_AddStringToObject(d, "node", id);
	report_send_any(r, "progress", d);
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
	report_ui(r, i, res, 0);
	cache_put(r->sig[i], res);
	report_progress(r, r->g->v[i].id, "finished",
	    r->w.steps ? r->w.steps : 1, r->w.steps ? r->w.steps : 1);
	cJSON_AddItemToArray(r->executed, cJSON_CreateString(r->g->v[i].id));
	execlist_done(r->el, i);
	run_set_state(r, RS_PICK);
	return (1);
}

/*
 * Runs the state machine until it has to wait or the prompt ends. A prompt
 * whose nodes take no time still hands the loop back every RUN_SLICE_MS
 * (ComfyUI runs prompts on a thread of their own), so HTTP, sockets and
 * /interrupt are served while a big graph runs.
 */
static void
run_drive(void)
{
	struct run *r;
	long long   start = clock_mono_ms();
	int	    go = 1;

	while (go && (r = run) != NULL) {
		if (clock_mono_ms() - start >= RUN_SLICE_MS) {
			timer_add_ms(run_timer, 0);
			return;
		}
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

	stats_prompt_start();
	r->p = p;
	r->g = p->g;
	r->cur = -1;
	r->state = RS_PICK;
	r->sig = xcalloc(n + 1, sizeof *r->sig);
	r->res = xcalloc(n + 1, sizeof *r->res);
	r->cached = xcalloc(n + 1, sizeof *r->cached);
	r->messages = cJSON_CreateArray();
	r->outputs = cJSON_CreateObject();
	r->meta = cJSON_CreateObject();
	r->executed = cJSON_CreateArray();
	r->progress = omap_new();
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
	report_message(r, "execution_start", report_data(r), 0);
	cache_set_prompt(r->g, r->sig);
	cached = cJSON_CreateArray();
	for (i = 0; i < n; i++) {
		if (cache_get(r->sig[i]) == NULL)
			continue;
		r->cached[i] = 1;
		/* what the execution list reads from the cache */
		r->res[i] = result_ref(cache_get(r->sig[i]));
		cJSON_AddItemToArray(cached, cJSON_CreateString(r->g->v[i].id));
	}
	o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "nodes", cached);
	cJSON_AddStringToObject(o, "prompt_id", p->id);
	report_message(r, "execution_cached", o, 0);
	r->el = execlist_new(r->g, r->cached);
	cJSON_ArrayForEach(o, p->outputs) {
		if ((idx = graph_find(r->g, o->valuestring)) >= 0)
			execlist_add(r->el, idx);
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
