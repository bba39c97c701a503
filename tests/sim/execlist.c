/*
 * ComfyUI's ExecutionList (comfy_execution/graph.py): which node runs
 * next. Adding an output node adds it and, depth-first, every ancestor
 * that is not cached, then a "strong link" from each ancestor to each node
 * it feeds; a node is ready when nothing it depends on is pending. Among
 * the ready nodes ux_friendly_pick_node() prefers an output node, then a
 * node feeding an output node, then one two steps away, else the first
 * added. The same rules give the same order as ComfyUI, which is what a
 * client sees in the `executing` events.
 */
#include <stdlib.h>

#include "sim.h"
#include "xmalloc.h"

struct adj {
	int *v;
	int  n;
};

struct execlist {
	const struct graph *g;
	const int	   *cached; /* per node: its outputs come from cache */
	int		   *pending;
	int		   *order; /* pending nodes in insertion order */
	int		    norder;
	int		   *nblock;   /* blockCount */
	struct adj	   *blocking; /* nodes each node blocks */
};

struct execlist *
execlist_new(const struct graph *g, const int *cached)
{
	struct execlist *el = xcalloc(1, sizeof *el);
	size_t		 n = g->n + 1;

	el->g = g;
	el->cached = cached;
	el->pending = xcalloc(n, sizeof *el->pending);
	el->order = xcalloc(n, sizeof *el->order);
	el->nblock = xcalloc(n, sizeof *el->nblock);
	el->blocking = xcalloc(n, sizeof *el->blocking);
	return (el);
}

void
execlist_free(struct execlist *el)
{
	size_t i;

	if (el == NULL)
		return;
	for (i = 0; i < el->g->n; i++)
		free(el->blocking[i].v);
	free(el->pending);
	free(el->order);
	free(el->nblock);
	free(el->blocking);
	free(el);
}

/* Adds v to a unique list; 1 if it was new. */
static int
adj_add(struct adj *a, int v)
{
	int k;

	for (k = 0; k < a->n; k++)
		if (a->v[k] == v)
			return (0);
	a->v = xrealloc(a->v, (size_t)(a->n + 1) * sizeof *a->v);
	a->v[a->n++] = v;
	return (1);
}

/* add_node(): node start and its uncached ancestors, then the links. */
void
execlist_add(struct execlist *el, int start)
{
	int	   *stack, *links = NULL, sp = 0, nlinks = 0, i, s, k, slot;
	cJSON	   *in;
	const char *src;

	stack = xmalloc(sizeof *stack);
	stack[sp++] = start;
	while (sp > 0) {
		i = stack[--sp];
		if (el->pending[i])
			continue;
		el->pending[i] = 1;
		el->order[el->norder++] = i;
		el->nblock[i] = 0;
		el->blocking[i].n = 0;
		cJSON_ArrayForEach(in, el->g->v[i].inputs)
		{
			if (!graph_link(in, &src, &slot) ||
			    (s = graph_find(el->g, src)) < 0)
				continue;
			stack =
			    xrealloc(stack, (size_t)(sp + 1) * sizeof *stack);
			if (!el->cached[s])
				stack[sp++] = s;
			links = xrealloc(
			    links, (size_t)(nlinks + 2) * sizeof *links);
			links[nlinks++] = s;
			links[nlinks++] = i;
		}
	}
	for (k = 0; k < nlinks; k += 2)
		if (!el->cached[links[k]] &&
		    adj_add(&el->blocking[links[k]], links[k + 1]))
			el->nblock[links[k + 1]]++;
	free(links);
	free(stack);
}

static int
execlist_blocks_output(const struct execlist *el, int i, int depth)
{
	int k, b;

	for (k = 0; k < el->blocking[i].n; k++) {
		b = el->blocking[i].v[k];
		if (depth == 0 ? el->g->v[b].cls->output_node
			       : execlist_blocks_output(el, b, depth - 1))
			return (1);
	}
	return (0);
}

/* ux_friendly_pick_node() over the ready nodes; -1 if none is ready. */
int
execlist_pick(const struct execlist *el)
{
	int k, pass, i, first = -1;

	for (pass = 0; pass < 3; pass++)
		for (k = 0; k < el->norder; k++) {
			i = el->order[k];
			if (!el->pending[i] || el->nblock[i] != 0)
				continue;
			if (first == -1)
				first = i;
			if (pass == 0 ? el->g->v[i].cls->output_node
				      : execlist_blocks_output(el, i, pass - 1))
				return (i);
		}
	return (first);
}

/* complete_node_execution(): i is done, the nodes it blocked advance. */
void
execlist_done(struct execlist *el, int i)
{
	int k;

	el->pending[i] = 0;
	for (k = 0; k < el->blocking[i].n; k++)
		el->nblock[el->blocking[i].v[k]]--;
	el->blocking[i].n = 0;
}

int
execlist_pending(const struct execlist *el, int i)
{
	return (el->pending[i]);
}

/* How many nodes are still pending (left over at the end: a cycle). */
int
execlist_left(const struct execlist *el)
{
	int k, n = 0;

	for (k = 0; k < el->norder; k++)
		n += el->pending[el->order[k]];
	return (n);
}
