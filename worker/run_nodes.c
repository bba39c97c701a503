/*
 * What ComfyUI did with a run's prompt, as its socket said: the nodes it
 * began, in order (`executing`), those it took from its cache
 * (`execution_cached`), and the node it was at when the prompt ended
 * (`execution_error` / `execution_interrupted` name it; a prompt stopped
 * by us ends at the node it last began); a prompt whose end came from
 * /history adds what its status messages say. The run passes this on with the
 * calls it makes anyway, never with a call of its own (README, Events:
 * `nodes`): each progress call carries what is new since the previous
 * one, the report (complete or fail) all of it. The scheduler's ComfyUI
 * front turns it back into ComfyUI's per-node `executing` and
 * `execution_cached` messages (docs/design.md §8), so a job costs no
 * stream entry per node.
 *
 * The lists keep at most RUN_NODES_BYTES of ids (a graph has at most
 * GRAPH_NODES_MAX nodes, each id ~ a few bytes), so the JSON stays well
 * under the library's NODES_MAX; what passes it is not recorded.
 */
#include <stdio.h>
#include <string.h>

#include "run_int.h"

#define RUN_NODES_BYTES 32768
#define RUN_NODE_ID_MAX 63

/* Appends id to *list (made when NULL) if the byte budget allows. */
static void
run_nodes_add(struct run *r, cJSON **list, const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > RUN_NODE_ID_MAX ||
	    r->nodes_bytes + n + 3 > RUN_NODES_BYTES)
		return;
	if (*list == NULL)
		*list = cJSON_CreateArray();
	cJSON_AddItemToArray(*list, cJSON_CreateString(id));
	r->nodes_bytes += n + 3;
}

static const char *
run_str(const cJSON *data, const char *key)
{
	return (
	    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, key)));
}

/* Every event of the run's prompt, in any state, before it is acted on. */
void
run_nodes_event(struct run *r, const char *type, const cJSON *data)
{
	const cJSON *node = cJSON_GetObjectItemCaseSensitive(data, "node");
	const cJSON *last, *v;
	const char  *id;

	if (r->state >= RS_REPORT)
		return;
	if (strcmp(type, "executing") == 0) {
		if (cJSON_IsNull(node)) {
			r->nodes_done = 1;
			return;
		}
		if (!cJSON_IsString(node))
			return;
		last = cJSON_GetArrayItem(
		    r->nodes_ran, cJSON_GetArraySize(r->nodes_ran) - 1);
		if (last == NULL ||
		    strcmp(last->valuestring, node->valuestring) != 0)
			run_nodes_add(r, &r->nodes_ran, node->valuestring);
	} else if (strcmp(type, "execution_cached") == 0) {
		if (r->nodes_cached != NULL)
			return; /* a resubmitted prompt: the first one stands */
		r->nodes_cached = cJSON_CreateArray();
		cJSON_ArrayForEach(
		    v, cJSON_GetObjectItemCaseSensitive(data, "nodes")) {
			if (cJSON_IsString(v))
				run_nodes_add(
				    r, &r->nodes_cached, v->valuestring);
		}
	} else if (strcmp(type, "progress") == 0)
		r->nodes_prog = cJSON_GetArraySize(r->nodes_ran);
	else if (strcmp(type, "execution_error") == 0 ||
	    strcmp(type, "execution_interrupted") == 0) {
		if ((id = run_str(data, "node_id")) != NULL &&
		    strlen(id) <= RUN_NODE_ID_MAX)
			snprintf(r->nodes_at, sizeof r->nodes_at, "%s", id);
	}
}

/*
 * A finished prompt's history entry: its status messages say what the
 * socket may not have (execution_cached, where an error was), for a
 * prompt whose end the run learnt from /history.
 */
void
run_nodes_history(struct run *r, const cJSON *entry)
{
	const cJSON *m;

	cJSON_ArrayForEach(m,
	    cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(entry, "status"),
		"messages")) {
		if (cJSON_IsArray(m) && cJSON_IsString(m->child) &&
		    cJSON_IsObject(m->child->next))
			run_nodes_event(
			    r, m->child->valuestring, m->child->next);
	}
}

/* ran[from..to) as a new array. */
static cJSON *
run_nodes_slice(const cJSON *ran, int from, int to)
{
	cJSON *a = cJSON_CreateArray();
	int    i;

	for (i = from; i < to; i++)
		cJSON_AddItemToArray(a,
		    cJSON_CreateString(
			cJSON_GetArrayItem(ran, i)->valuestring));
	return (a);
}

/*
 * What is new since the previous progress call: the nodes begun up to the
 * progress message being reported, and the cached ones on the first call;
 * NULL when nothing is new. Marks it sent. Free with cJSON_free.
 */
char *
run_nodes_delta(struct run *r)
{
	cJSON *o;
	char  *text;

	if (r->nodes_prog <= r->nodes_sent &&
	    (r->nodes_cached == NULL || r->nodes_cached_sent))
		return (NULL);
	o = cJSON_CreateObject();
	if (r->nodes_prog > r->nodes_sent)
		cJSON_AddItemToObject(o, "ran",
		    run_nodes_slice(
			r->nodes_ran, r->nodes_sent, r->nodes_prog));
	if (r->nodes_cached != NULL && !r->nodes_cached_sent)
		cJSON_AddItemToObject(
		    o, "cached", cJSON_Duplicate(r->nodes_cached, 1));
	r->nodes_sent =
	    r->nodes_prog > r->nodes_sent ? r->nodes_prog : r->nodes_sent;
	r->nodes_cached_sent = r->nodes_cached != NULL;
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return (text);
}

/*
 * Everything, for the report: ran and cached (empty when ComfyUI said
 * nothing), and for a failure `at`: the node ComfyUI named, else, while
 * the prompt was still running in ComfyUI, the node it last began. Free
 * with cJSON_free.
 */
char *
run_nodes_all(const struct run *r, int failed)
{
	cJSON	    *o = cJSON_CreateObject();
	const cJSON *last;
	char	    *text;

	cJSON_AddItemToObject(o, "ran",
	    r->nodes_ran != NULL ? cJSON_Duplicate(r->nodes_ran, 1)
				 : cJSON_CreateArray());
	cJSON_AddItemToObject(o, "cached",
	    r->nodes_cached != NULL ? cJSON_Duplicate(r->nodes_cached, 1)
				    : cJSON_CreateArray());
	last = cJSON_GetArrayItem(
	    r->nodes_ran, cJSON_GetArraySize(r->nodes_ran) - 1);
	if (failed && r->nodes_at[0] != '\0')
		cJSON_AddStringToObject(o, "at", r->nodes_at);
	else if (failed && r->submitted && !r->nodes_done && last != NULL)
		cJSON_AddStringToObject(o, "at", last->valuestring);
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return (text);
}
