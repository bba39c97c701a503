/*
 * ComfyUI's ExecutionList (comfy_execution/graph.py): which node runs
 * next. Adding an output node adds it and, depth-first, every ancestor
 * that is not cached, then a "strong link" from each ancestor to each node
 * it feeds; a node is ready when nothing it depends on is pending. Among
 * the ready nodes ux_friendly_pick_node() prefers an output node, then a
 * node feeding an output node, then one two steps away, else the first
 * added. The same rules give the same order as ComfyUI, which is what a
 * client sees in the `executing` events. The ready nodes are kept in a
 * list of their own, in the order they were added, so a pick looks at the
 * ready nodes only, not at every pending one.
 */
#include <stdlib.h>
#include <string.h>

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
	int		   *pos;      /* per node: its place in order */
	int		   *ready;    /* pending, nblock 0, by place in order */
	int		    nready;
	int		    built; /* ready holds what the adds gave */
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
	el->pos = xcalloc(n, sizeof *el->pos);
	el->ready = xcalloc(n, sizeof *el->ready);
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
	free(el->pos);
	free(el->ready);
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
		el->pos[i] = el->norder;
		el->order[el->norder++] = i;
		el->nblock[i] = 0;
		el->blocking[i].n = 0;
		cJSON_ArrayForEach(in, el->g->v[i].inputs) {
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
	el->built = 0;
}

/* Where node i goes in (or is in) the ready list. */
static int
execlist_slot(const struct execlist *el, int i)
{
	int lo = 0, hi = el->nready, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (el->pos[el->ready[mid]] < el->pos[i])
			lo = mid + 1;
		else
			hi = mid;
	}
	return (lo);
}

static void
execlist_build(struct execlist *el)
{
	int k, i;

	el->nready = 0;
	for (k = 0; k < el->norder; k++) {
		i = el->order[k];
		if (el->pending[i] && el->nblock[i] == 0)
			el->ready[el->nready++] = i;
	}
	el->built = 1;
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
execlist_pick(struct execlist *el)
{
	int k, pass, i;

	if (!el->built)
		execlist_build(el);
	for (pass = 0; pass < 3; pass++)
		for (k = 0; k < el->nready; k++) {
			i = el->ready[k];
			if (pass == 0 ? el->g->v[i].cls->output_node
				      : execlist_blocks_output(el, i, pass - 1))
				return (i);
		}
	return (el->nready > 0 ? el->ready[0] : -1);
}

/* complete_node_execution(): i is done, the nodes it blocked advance. */
void
execlist_done(struct execlist *el, int i)
{
	int k, b, at;

	el->pending[i] = 0;
	if (el->built && (at = execlist_slot(el, i)) < el->nready &&
	    el->ready[at] == i) {
		memmove(el->ready + at, el->ready + at + 1,
		    (size_t)(el->nready - at - 1) * sizeof *el->ready);
		el->nready--;
	}
	for (k = 0; k < el->blocking[i].n; k++) {
		b = el->blocking[i].v[k];
		if (--el->nblock[b] != 0 || !el->pending[b] || !el->built)
			continue;
		at = execlist_slot(el, b);
		memmove(el->ready + at + 1, el->ready + at,
		    (size_t)(el->nready - at) * sizeof *el->ready);
		el->ready[at] = b;
		el->nready++;
	}
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
