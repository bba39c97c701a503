/*
 * ComfyUI API-format graphs (comfyui-api.md §4): an object of nodes keyed
 * by string id, each {"class_type", "inputs", "_meta"}, where an input is a
 * literal or a link ["<node id>", <output index>]. These helpers read and
 * edit such a tree in place (fresh node ids, rewiring every consumer of an
 * output), validate it before it is sent, and print it with its keys in a
 * fixed order so that two renderings of one job compare byte for byte.
 */
#ifndef COMFYQ_GRAPH_H
#define COMFYQ_GRAPH_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define GRAPH_ID_MAX	 64   /* a node id, with its NUL */
#define GRAPH_NODES_MAX	 1000 /* nodes in one graph */
#define GRAPH_OUTPUT_MAX 64   /* outputs of one node */

/* What we know of a node class without asking ComfyUI. */
struct graph_class {
	const char *name;
	int	    outputs;	 /* number of outputs */
	int	    output_node; /* OUTPUT_NODE: produces files */
};

const struct graph_class *graph_class_find(const char *name);
const char		 *graph_node_class(const cJSON *node);
cJSON			 *graph_node_inputs(cJSON *node);
int    graph_link_parse(const cJSON *v, const char **id, int *slot);
cJSON *graph_link_new(const char *id, int slot);
int    graph_link_is(const cJSON *v, const char *id, int slot);
void   graph_set(cJSON *obj, const char *key, cJSON *item);
void   graph_set_num(cJSON *obj, const char *key, double v);
void   graph_set_str(cJSON *obj, const char *key, const char *s);
cJSON *graph_node_add(cJSON *graph, const char *ct, char id[GRAPH_ID_MAX]);
int    graph_relink(cJSON *graph, const char *from, int slot, const char *to,
       int toslot, const char *skip);
int    graph_validate(
       const cJSON *graph, const cJSON *object_info, char *err, size_t errlen);
const char *graph_dup_key(const cJSON *obj);
cJSON	   *graph_sorted(const cJSON *v);
char	   *graph_print(const cJSON *graph);

#endif
