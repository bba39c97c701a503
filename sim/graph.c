/*
 * A parsed view of one API-format graph, {"<id>": {"class_type", "inputs"}},
 * in the order of the JSON object (Python dicts keep insertion order, and
 * ComfyUI walks prompts in that order). The view points into the cJSON
 * tree; it never copies values. Built only for graphs that passed
 * validate_prompt(), where every node is an object of a known class.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "xmalloc.h"

struct graph *
graph_new(cJSON *prompt)
{
	struct graph *g = xcalloc(1, sizeof *g);
	cJSON	     *n, *ct;
	size_t	      i = 0;

	g->n = (size_t)cJSON_GetArraySize(prompt);
	g->v = xcalloc(g->n > 0 ? g->n : 1, sizeof *g->v);
	g->index = omap_new();
	cJSON_ArrayForEach(n, prompt) {
		if (omap_get(g->index, n->string) == NULL)
			omap_put(
			    g->index, n->string, (void *)(uintptr_t)(i + 1));
		ct = cJSON_GetObjectItemCaseSensitive(n, "class_type");
		g->v[i].id = n->string;
		g->v[i].json = n;
		g->v[i].inputs = cJSON_GetObjectItemCaseSensitive(n, "inputs");
		if (!cJSON_IsObject(g->v[i].inputs))
			g->v[i].inputs = NULL;
		g->v[i].cls = cJSON_IsString(ct)
		    ? node_class_find(ct->valuestring)
		    : NULL;
		i++;
	}
	return (g);
}

void
graph_free(struct graph *g)
{
	if (g == NULL)
		return;
	omap_free(g->index, NULL);
	free(g->v);
	free(g);
}

/* The index of node id (the first node of that id), or -1. */
int
graph_find(const struct graph *g, const char *id)
{
	uintptr_t i = (uintptr_t)omap_get(g->index, id);

	return (i > 0 ? (int)(i - 1) : -1);
}

/* ComfyUI's is_link(): a 2-list of a string id and a number slot. */
int
graph_link(const cJSON *v, const char **id, int *slot)
{
	const cJSON *a, *b;

	if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2)
		return (0);
	a = v->child;
	b = a->next;
	if (!cJSON_IsString(a) || (!cJSON_IsNumber(b) && !cJSON_IsBool(b)))
		return (0);
	if (id != NULL)
		*id = a->valuestring;
	if (slot != NULL)
		*slot = cJSON_IsBool(b) ? cJSON_IsTrue(b) : (int)b->valuedouble;
	return (1);
}
