/*
 * What a running prompt reports, shaped as ComfyUI shapes it: WebSocket
 * events to the prompt's client (or to every socket for the few ComfyUI
 * broadcasts when a prompt has no client_id), the status messages kept
 * for history (PromptExecutor.add_message), progress_state, the UI
 * outputs and their meta, execution_error with current_inputs and a
 * traceback, and the history entry itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

/* The socket this prompt's events go to; NULL broadcasts. */
static const char *
report_sid(const struct run *r)
{
	return (r->has_client ? r->p->client_id : NULL);
}

/* An event for the client only (executing, executed, ...). */
void
report_send(struct run *r, const char *type, cJSON *data)
{
	if (r->has_client && r->p->client_id != NULL)
		notify_send(r->p->client_id, type, data);
	else
		cJSON_Delete(data);
}

/* An event for the client, or everyone when there is none (progress). */
void
report_send_any(struct run *r, const char *type, cJSON *data)
{
	if (r->has_client && r->p->client_id == NULL)
		cJSON_Delete(data);
	else
		notify_send(report_sid(r), type, data);
}

/* PromptExecutor.add_message(): kept for history, sent as an event. */
void
report_message(struct run *r, const char *type, cJSON *data, int broadcast)
{
	cJSON *pair = cJSON_CreateArray();

	cJSON_AddNumberToObject(data, "timestamp", (double)clock_wall_ms());
	cJSON_AddItemToArray(pair, cJSON_CreateString(type));
	cJSON_AddItemToArray(pair, cJSON_Duplicate(data, 1));
	cJSON_AddItemToArray(r->messages, pair);
	if (r->has_client || broadcast)
		report_send_any(r, type, data);
	else
		cJSON_Delete(data);
}

cJSON *
report_data(const struct run *r)
{
	cJSON *d = cJSON_CreateObject();

	cJSON_AddStringToObject(d, "prompt_id", r->p->id);
	return (d);
}

/*
 * progress_state: every node that has started, with its progress. Like
 * ComfyUI's, each one lists all started nodes, so a prompt of n nodes sends
 * about n^2 entries; they are built only when a socket will get them.
 */
void
report_progress(
    struct run *r, const char *id, const char *state, double value, double max)
{
	struct omap_ent *e;
	struct pstate	*ps;
	cJSON		*d, *nodes, *n;

	if ((ps = omap_get(r->progress, id)) == NULL) {
		ps = xmalloc(sizeof *ps);
		omap_put(r->progress, id, ps);
	}
	ps->value = value;
	ps->max = max;
	ps->state = state;
	if (!sim.cfg.progress_state ||
	    (r->has_client && r->p->client_id == NULL) ||
	    !notify_wanted(report_sid(r)))
		return;
	d = report_data(r);
	nodes = cJSON_AddObjectToObject(d, "nodes");
	for (e = omap_first(r->progress); e != NULL; e = omap_next(e)) {
		ps = omap_val(e);
		n = cJSON_AddObjectToObject(nodes, omap_key(e));
		cJSON_AddNumberToObject(n, "value", ps->value);
		cJSON_AddNumberToObject(n, "max", ps->max);
		cJSON_AddStringToObject(n, "state", ps->state);
		cJSON_AddStringToObject(n, "node_id", omap_key(e));
		cJSON_AddStringToObject(n, "prompt_id", r->p->id);
		cJSON_AddStringToObject(n, "display_node_id", omap_key(e));
		cJSON_AddNullToObject(n, "parent_node_id");
		cJSON_AddStringToObject(n, "real_node_id", omap_key(e));
	}
	report_send_any(r, "progress_state", d);
}

/* Records the UI output of node i for history and sends `executed`:
 * a cached output node always (its old output, or null), a node that ran
 * only when it has a non-empty UI dict. */
void
report_ui(struct run *r, int i, const struct node_result *res, int cached)
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
	report_send(r, "executed", d);
}

static cJSON *
report_inputs(const struct run *r, int i)
{
	const struct gnode *n = &r->g->v[i];
	const struct value *v;
	cJSON		   *ci = cJSON_CreateObject(), *in, *l;
	const char	   *src;
	char		   *s;
	int		    slot, si;

	cJSON_ArrayForEach(in, n->inputs) {
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

/* handle_execution_error(): the execution_error message for node i. */
void
report_error(struct run *r, int i, const struct pyexc *exc)
{
	static const char oom_tips[] =
	    "This error means you ran out of memory on your GPU.\n\nTIPS: If "
	    "the workflow worked before you might have accidentally set the batch_size to a large number.";
	int    oom = strstr(exc->type, "OutOfMemoryError") != NULL;
	cJSON *d = report_data(r), *tb, *outs;
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
	    cJSON_CreateString(
		"  File \"/ComfyUI/execution.py\", line 496, in "
		"execute\n    output_data, output_ui, "
		"has_subgraph, has_pending_tasks = await get_output_data(prompt_id, unique_id, obj, input_data_all, execution_block_cb=execution_"
		"block_cb, pre_execute_cb=pre_execute_cb, "
		"v3_data=v3_data)\n"));
	cJSON_AddItemToObject(d, "current_inputs", report_inputs(r, i));
	outs = cJSON_AddArrayToObject(d, "current_outputs");
	for (k = 0; k < r->g->n; k++)
		cJSON_AddItemToArray(outs, cJSON_CreateString(r->g->v[k].id));
	log_job(LL_NOTICE, r->p->id, "node %s (%s): %s: %s", r->g->v[i].id,
	    r->g->v[i].cls->name, exc->type, exc->msg);
	report_message(r, "execution_error", d, 0);
}

void
report_interrupted(struct run *r, int i)
{
	cJSON *d = report_data(r);

	cJSON_AddStringToObject(d, "node_id", r->g->v[i].id);
	cJSON_AddStringToObject(d, "node_type", r->g->v[i].cls->name);
	cJSON_AddItemToObject(d, "executed", cJSON_Duplicate(r->executed, 1));
	log_job(LL_VERBOSE, r->p->id, "interrupted at node %s", r->g->v[i].id);
	report_message(r, "execution_interrupted", d, 1);
}

/* The history entry of a finished prompt; takes the messages, outputs,
 * meta and the prompt's trees. */
cJSON *
report_history(struct run *r, int success)
{
	cJSON *entry = cJSON_CreateObject(), *status;

	cJSON_AddItemToObject(entry, "prompt", prompt_item(r->p, 0));
	cJSON_AddItemToObject(entry, "outputs", r->outputs);
	status = cJSON_AddObjectToObject(entry, "status");
	cJSON_AddStringToObject(
	    status, "status_str", success ? "success" : "error");
	cJSON_AddBoolToObject(status, "completed", success);
	cJSON_AddItemToObject(status, "messages", r->messages);
	cJSON_AddItemToObject(entry, "meta", r->meta);
	r->outputs = r->messages = r->meta = NULL;
	return (entry);
}
