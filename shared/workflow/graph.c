/*
 * API-format graph helpers and validation (see graph.h).
 *
 * Validation refuses what ComfyUI would refuse at POST /prompt, and what it
 * would accept but never finish: a link to a node that is not there, an
 * output index the source node does not have, a list that is not a link
 * (ComfyUI reads every 2-element list as a link), a cycle, and a graph with
 * no output node. Output counts come from /object_info when the caller has
 * it, otherwise from the table below of the classes our templates and
 * surgery use; a class we do not know is given the benefit of the doubt.
 *
 * Printing sorts object keys (numerically where both keys are numbers) so
 * golden files and `comfyq render` output do not depend on the order in
 * which nodes were added.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errout.h"
#include "graph.h"
#include "log.h"
#include "xmalloc.h"

static const struct graph_class graph_classes[] = {
	{ "CheckpointLoaderSimple", 3, 0 },
	{ "CLIPTextEncode", 1, 0 },
	{ "ControlNetApplyAdvanced", 2, 0 },
	{ "ControlNetLoader", 1, 0 },
	{ "EmptyImage", 1, 0 },
	{ "EmptyLatentImage", 1, 0 },
	{ "ImageBlur", 1, 0 },
	{ "ImageInvert", 1, 0 },
	{ "ImageOnlyCheckpointLoader", 3, 0 },
	{ "ImageScale", 1, 0 },
	{ "ImageScaleBy", 1, 0 },
	{ "IPAdapterFaceID", 2, 0 },
	{ "IPAdapterUnifiedLoaderFaceID", 2, 0 },
	{ "KSampler", 1, 0 },
	{ "KSamplerAdvanced", 1, 0 },
	{ "LoadImage", 2, 0 },
	{ "LoraLoader", 2, 0 },
	{ "LoraLoaderModelOnly", 1, 0 },
	{ "PreviewImage", 0, 1 },
	{ "SaveAnimatedPNG", 0, 1 },
	{ "SaveAnimatedWEBP", 0, 1 },
	{ "SaveImage", 0, 1 },
	{ "SaveImageWebsocket", 0, 1 },
	{ "SVD_img2vid_Conditioning", 3, 0 },
	{ "VAEDecode", 1, 0 },
	{ "VAEEncode", 1, 0 },
	{ "VHS_VideoCombine", 1, 1 },
	{ "VideoLinearCFGGuidance", 1, 0 },
};

const struct graph_class *
graph_class_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof graph_classes / sizeof graph_classes[0]; i++)
		if (strcmp(graph_classes[i].name, name) == 0)
			return (&graph_classes[i]);
	return (NULL);
}

/* The node's class_type, or NULL when it has none. */
const char *
graph_node_class(const cJSON *node)
{
	const cJSON *ct;

	ct = cJSON_GetObjectItemCaseSensitive(node, "class_type");
	return (cJSON_IsString(ct) ? ct->valuestring : NULL);
}

/* The node's inputs object, created when missing. */
cJSON *
graph_node_inputs(cJSON *node)
{
	cJSON *in;

	in = cJSON_GetObjectItemCaseSensitive(node, "inputs");
	if (cJSON_IsObject(in))
		return (in);
	graph_set(node, "inputs", cJSON_CreateObject());
	return (cJSON_GetObjectItemCaseSensitive(node, "inputs"));
}

/*
 * Returns 1 when v is a well-formed link ["id", n], with its parts in
 * *id and *slot; 0 otherwise.
 */
int
graph_link_parse(const cJSON *v, const char **id, int *slot)
{
	const cJSON *a, *b;
	double	     d;

	if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2)
		return (0);
	a = cJSON_GetArrayItem(v, 0);
	b = cJSON_GetArrayItem(v, 1);
	if (!cJSON_IsString(a) || !cJSON_IsNumber(b))
		return (0);
	d = b->valuedouble;
	if (!(d >= 0 && d < GRAPH_OUTPUT_MAX) || d != (double)(int)d)
		return (0);
	*id = a->valuestring;
	*slot = (int)d;
	return (1);
}

cJSON *
graph_link_new(const char *id, int slot)
{
	cJSON *l;

	if ((l = cJSON_CreateArray()) == NULL ||
	    !cJSON_AddItemToArray(l, cJSON_CreateString(id)) ||
	    !cJSON_AddItemToArray(l, cJSON_CreateNumber(slot)))
		fatalx("graph: out of memory");
	return (l);
}

int
graph_link_is(const cJSON *v, const char *id, int slot)
{
	const char *lid;
	int	    lslot;

	return (graph_link_parse(v, &lid, &lslot) && lslot == slot &&
	    strcmp(lid, id) == 0);
}

/* Sets obj[key] = item, replacing any value; item is owned by obj. */
void
graph_set(cJSON *obj, const char *key, cJSON *item)
{
	if (item == NULL)
		fatalx("graph: out of memory");
	if (cJSON_GetObjectItemCaseSensitive(obj, key) != NULL) {
		cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item);
		return;
	}
	if (!cJSON_AddItemToObject(obj, key, item))
		fatalx("graph: out of memory");
}

void
graph_set_num(cJSON *obj, const char *key, double v)
{
	graph_set(obj, key, cJSON_CreateNumber(v));
}

void
graph_set_str(cJSON *obj, const char *key, const char *s)
{
	graph_set(obj, key, cJSON_CreateString(s));
}

static int
graph_id_number(const char *s, long *out)
{
	long n = 0;

	if (*s == '\0' || strlen(s) > 9)
		return (0);
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return (0);
		n = n * 10 + (*s - '0');
	}
	*out = n;
	return (1);
}

/*
 * Adds a node of class ct under a fresh id (one more than the largest
 * numeric id), written to id. Returns the new node's inputs object.
 */
cJSON *
graph_node_add(cJSON *graph, const char *ct, char id[GRAPH_ID_MAX])
{
	const cJSON *n;
	cJSON	    *node;
	long	     v, max = 0;

	cJSON_ArrayForEach(n, graph) {
		if (graph_id_number(n->string, &v) && v > max)
			max = v;
	}
	do
		snprintf(id, GRAPH_ID_MAX, "%ld", ++max);
	while (cJSON_GetObjectItemCaseSensitive(graph, id) != NULL);
	if ((node = cJSON_CreateObject()) == NULL)
		fatalx("graph: out of memory");
	graph_set(node, "inputs", cJSON_CreateObject());
	graph_set_str(node, "class_type", ct);
	graph_set(graph, id, node);
	return (graph_node_inputs(node));
}

/*
 * Points every input linked to (from, slot) at (to, toslot), except the
 * inputs of node skip (the new node that itself reads from). Returns the
 * number of inputs changed.
 */
int
graph_relink(cJSON *graph, const char *from, int slot, const char *to,
    int toslot, const char *skip)
{
	cJSON *node, *in, *v, *next;
	int    n = 0;

	cJSON_ArrayForEach(node, graph) {
		if (skip != NULL && strcmp(node->string, skip) == 0)
			continue;
		in = cJSON_GetObjectItemCaseSensitive(node, "inputs");
		for (v = cJSON_IsObject(in) ? in->child : NULL; v != NULL;
		     v = next) {
			next = v->next; /* graph_set() frees v */
			if (!graph_link_is(v, from, slot))
				continue;
			graph_set(in, v->string, graph_link_new(to, toslot));
			n++;
		}
	}
	return (n);
}

/* Output count and output-node flag of a class: 1 when known. */
static int
graph_class_info(
    const cJSON *object_info, const char *ct, int *outputs, int *output_node)
{
	const struct graph_class *gc;
	const cJSON		 *c, *o;

	if (object_info != NULL) {
		c = cJSON_GetObjectItemCaseSensitive(object_info, ct);
		if (!cJSON_IsObject(c))
			return (0);
		o = cJSON_GetObjectItemCaseSensitive(c, "output");
		*outputs = cJSON_IsArray(o) ? cJSON_GetArraySize(o) : 0;
		o = cJSON_GetObjectItemCaseSensitive(c, "output_node");
		*output_node = cJSON_IsTrue(o);
		return (1);
	}
	if ((gc = graph_class_find(ct)) == NULL)
		return (0);
	*outputs = gc->outputs;
	*output_node = gc->output_node;
	return (1);
}

/* Checks one node's inputs: every list a link to an existing output. */
static int
graph_check_inputs(const cJSON *graph, const cJSON *node,
    const cJSON *object_info, char *err, size_t errlen)
{
	const cJSON *in, *v, *src;
	const char  *id, *sct;
	int	     slot, outs, onode;

	in = cJSON_GetObjectItemCaseSensitive(node, "inputs");
	if (in != NULL && !cJSON_IsObject(in))
		ERR_OUT("node %s: inputs must be an object", node->string);
	cJSON_ArrayForEach(v, in) {
		if (!cJSON_IsArray(v))
			continue;
		if (!graph_link_parse(v, &id, &slot))
			ERR_OUT("node %s input %s: not a link [\"<node id>\", "
				"<output index>] (wrap a literal list as "
				"{\"__value__\": [...]})",
			    node->string, v->string);
		src = cJSON_GetObjectItemCaseSensitive(graph, id);
		if (src == NULL)
			ERR_OUT("node %s input %s: link to missing node %s",
			    node->string, v->string, id);
		sct = graph_node_class(src);
		if (sct != NULL &&
		    graph_class_info(object_info, sct, &outs, &onode) &&
		    slot >= outs)
			ERR_OUT(
			    "node %s input %s: node %s (%s) has no output %d (it has %d)",
			    node->string, v->string, id, sct, slot, outs);
	}
	return (0);
}

enum { GRAPH_WHITE, GRAPH_GREY, GRAPH_BLACK };

/* Depth-first search for a cycle from node index i; marks in colour. */
static int
graph_dfs(const cJSON *graph, const cJSON *node, int i, unsigned char *colour,
    int depth)
{
	const cJSON *in, *v, *src;
	const char  *id;
	int	     slot, j;

	if (colour[i] == GRAPH_GREY)
		return (i);
	if (colour[i] == GRAPH_BLACK || depth > GRAPH_NODES_MAX)
		return (-1);
	colour[i] = GRAPH_GREY;
	in = cJSON_GetObjectItemCaseSensitive(node, "inputs");
	cJSON_ArrayForEach(v, in) {
		if (!graph_link_parse(v, &id, &slot))
			continue;
		for (j = 0, src = graph->child; src != NULL;
		     src = src->next, j++)
			if (strcmp(src->string, id) == 0)
				break;
		if (src != NULL &&
		    (j = graph_dfs(graph, src, j, colour, depth + 1)) != -1)
			return (j);
	}
	colour[i] = GRAPH_BLACK;
	return (-1);
}

static int
graph_name_cmp(const void *a, const void *b)
{
	return (strcmp((*(const cJSON *const *)a)->string,
	    (*(const cJSON *const *)b)->string));
}

/*
 * The first key that obj (an object) holds twice, or NULL. cJSON keeps
 * both, and looks up the first, while ComfyUI's JSON parser keeps the
 * last: a node id, a node's "inputs" or an input given twice would let
 * what we check differ from what runs.
 */
const char *
graph_dup_key(const cJSON *obj)
{
	const cJSON **kids, *c, *dup = NULL;
	size_t	      n = 0, i;

	if (!cJSON_IsObject(obj))
		return (NULL);
	for (c = obj->child; c != NULL; c = c->next)
		n++;
	if (n < 2)
		return (NULL);
	kids = xcalloc(n, sizeof *kids);
	for (i = 0, c = obj->child; c != NULL; c = c->next)
		kids[i++] = c;
	qsort(kids, n, sizeof *kids, graph_name_cmp);
	for (i = 1; i < n && dup == NULL; i++)
		if (strcmp(kids[i - 1]->string, kids[i]->string) == 0)
			dup = kids[i];
	free(kids);
	return (dup != NULL ? dup->string : NULL);
}

/*
 * Validates a graph; object_info (GET /object_info) may be NULL. Returns 0,
 * or -1 with the first problem in err, e.g. "node 3 input model: link to
 * missing node 9".
 */
int
graph_validate(
    const cJSON *graph, const cJSON *object_info, char *err, size_t errlen)
{
	const cJSON   *node;
	const char    *ct, *dup;
	unsigned char *colour;
	int	       n = 0, i, outs, onode, outputs = 0, unknown = 0;

	if (!cJSON_IsObject(graph) || graph->child == NULL)
		ERR_OUT("graph: must be a non-empty object of nodes");
	cJSON_ArrayForEach(node, graph) {
		if (++n > GRAPH_NODES_MAX)
			ERR_OUT("graph: over %d nodes", GRAPH_NODES_MAX);
	}
	if ((dup = graph_dup_key(graph)) != NULL)
		ERR_OUT("graph: node id '%.80s' given twice", dup);
	n = 0;
	cJSON_ArrayForEach(node, graph) {
		n++;
		if (*node->string == '\0' ||
		    strlen(node->string) >= GRAPH_ID_MAX)
			ERR_OUT("graph: node id '%.80s' must be 1..%d bytes",
			    node->string, GRAPH_ID_MAX - 1);
		if (!cJSON_IsObject(node) ||
		    (ct = graph_node_class(node)) == NULL)
			ERR_OUT("node %s: no class_type", node->string);
		if ((dup = graph_dup_key(node)) != NULL ||
		    (dup = graph_dup_key(cJSON_GetObjectItemCaseSensitive(
			 node, "inputs"))) != NULL)
			ERR_OUT(
			    "node %s: '%.80s' given twice", node->string, dup);
		if (!graph_class_info(object_info, ct, &outs, &onode)) {
			if (object_info != NULL)
				ERR_OUT("node %s: class %s is not installed",
				    node->string, ct);
			unknown++;
		} else if (onode)
			outputs++;
		if (graph_check_inputs(graph, node, object_info, err, errlen) ==
		    -1)
			return (-1);
	}
	colour = calloc((size_t)n, 1);
	if (colour == NULL)
		ERR_OUT("graph: out of memory");
	for (i = 0, node = graph->child; node != NULL; node = node->next, i++) {
		int c = graph_dfs(graph, node, i, colour, 0);

		if (c != -1) {
			const cJSON *cn = cJSON_GetArrayItem(graph, c);

			free(colour);
			ERR_OUT("graph: cycle through node %s", cn->string);
		}
	}
	free(colour);
	if (outputs == 0 && unknown == 0)
		ERR_OUT(
		    "graph: no output node (SaveImage, PreviewImage, VHS_VideoCombine, ...)");
	return (0);
}

/* Key order for printing: numbers numerically, then bytewise. */
static int
graph_key_cmp(const char *a, const char *b)
{
	long na, nb;

	if (graph_id_number(a, &na) && graph_id_number(b, &nb) && na != nb)
		return (na < nb ? -1 : 1);
	return (strcmp(a, b));
}

static int
graph_item_cmp(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a,
		    *y = *(const cJSON *const *)b;

	return (graph_key_cmp(x->string, y->string));
}

/* A deep copy of v with every object's keys sorted; NULL on no memory. */
cJSON *
graph_sorted(const cJSON *v)
{
	const cJSON **kids = NULL;
	const cJSON  *c;
	cJSON	     *copy, *s;
	size_t	      n = 0, i;

	if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
		return (cJSON_Duplicate(v, 0));
	copy = cJSON_IsObject(v) ? cJSON_CreateObject() : cJSON_CreateArray();
	for (c = v->child; c != NULL; c = c->next)
		n++;
	if (copy == NULL || (n > 0 && (kids = calloc(n, sizeof *kids)) == NULL))
		goto fail;
	for (i = 0, c = v->child; c != NULL; c = c->next)
		kids[i++] = c;
	if (cJSON_IsObject(v) && n > 1)
		qsort(kids, n, sizeof *kids, graph_item_cmp);
	for (i = 0; i < n; i++) {
		if ((s = graph_sorted(kids[i])) == NULL)
			goto fail;
		if (!(cJSON_IsObject(v)
			    ? cJSON_AddItemToObject(copy, kids[i]->string, s)
			    : cJSON_AddItemToArray(copy, s))) {
			cJSON_Delete(s);
			goto fail;
		}
	}
	free(kids);
	return (copy);
fail:
	free(kids);
	cJSON_Delete(copy);
	return (NULL);
}

/*
 * The graph as indented JSON with sorted keys and a final newline, for
 * golden files and `comfyq render`. The caller frees it with free().
 */
char *
graph_print(const cJSON *graph)
{
	cJSON *s;
	char  *text, *out;
	size_t len;

	if ((s = graph_sorted(graph)) == NULL)
		return (NULL);
	text = cJSON_Print(s);
	cJSON_Delete(s);
	if (text == NULL)
		return (NULL);
	len = strlen(text);
	if ((out = malloc(len + 2)) != NULL) {
		memcpy(out, text, len);
		out[len] = '\n';
		out[len + 1] = '\0';
	}
	cJSON_free(text);
	return (out);
}
