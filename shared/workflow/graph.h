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

const struct graph_class *graph_class_find(const char *);
const char		 *graph_node_class(const cJSON *);
cJSON			 *graph_node_inputs(cJSON *);
int			  graph_link_parse(const cJSON *, const char **, int *);
cJSON			 *graph_link_new(const char *, int);
int			  graph_link_is(const cJSON *, const char *, int);
void			  graph_set(cJSON *, const char *, cJSON *);
void			  graph_set_num(cJSON *, const char *, double);
void			  graph_set_str(cJSON *, const char *, const char *);
cJSON *graph_node_add(cJSON *, const char *, char[GRAPH_ID_MAX]);
int graph_relink(cJSON *, const char *, int, const char *, int, const char *);
int graph_validate(const cJSON *, const cJSON *, char *, size_t);
const char *graph_dup_key(const cJSON *);
cJSON	   *graph_sorted(const cJSON *);
char	   *graph_print(const cJSON *);

#endif
