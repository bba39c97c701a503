/*
 * One parameter of a workflow template: its schema (type, default,
 * bounds, the node inputs it lands in), parsed from its entry of the
 * template file's "params", and a value checked against its rules. A param
 * knows nothing of the template that holds it: template.c (the file and
 * the registry) and wfresolve.c (a job's params) build on this, never the
 * other way round.
 */
#ifndef COMFYQ_WFPARAM_H
#define COMFYQ_WFPARAM_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "graph.h"

#define WF_NAME_MAX    64 /* a template or param name, with its NUL */
#define WF_INPUT_MAX   64 /* a node input name, with its NUL */
#define WF_TARGETS_MAX 32 /* targets of one param */

enum wf_type { WF_STRING, WF_INT, WF_FLOAT, WF_BOOL, WF_ENUM, WF_IMAGE };

struct wf_target {
	char node[GRAPH_ID_MAX];
	char input[WF_INPUT_MAX];
};

struct wf_param {
	char		  name[WF_NAME_MAX];
	enum wf_type	  type;
	const char	 *description;
	int		  required;
	const cJSON	 *def; /* default, or NULL */
	int		  has_min, has_max;
	double		  min, max;
	long long	  multiple_of;	     /* int: 0 when free */
	size_t		  max_len;	     /* string: 0 when free */
	const cJSON	 *values;	     /* enum: array of strings */
	const cJSON	 *sets;		     /* enum: value -> {param: value} */
	int		  lookup_controlnet; /* enum: a ControlNet type */
	int		  random;	     /* int: missing -> from job id */
	int		  lora_tags;	     /* string: <lora:...> tags */
	struct wf_target *targets;
	size_t		  ntargets;
	int		  resize; /* image: fit to width x height */
	char		  canny_enable[WF_NAME_MAX]; /* image: bool param */
	char		  canny_type[WF_NAME_MAX];   /* image: enum param */
	char		  canny_low[WF_NAME_MAX];
	char		  canny_high[WF_NAME_MAX];
};

const char *wf_type_name(enum wf_type t);
const char *wf_num(char buf[32], double d);

int  wf_field_name(const cJSON *obj, const char *key, char *out, int required,
     char *err, size_t errlen);
int  wf_field_num(const cJSON *obj, const char *key, int *has, double *out,
     char *err, size_t errlen);
int  wf_targets_parse(const cJSON *graph, const cJSON *arr,
     struct wf_target **out, size_t *n, char *err, size_t errlen);
int  wf_param_parse(const cJSON *graph, const cJSON *o, struct wf_param *p,
     char *err, size_t errlen);
void wf_param_rule(const struct wf_param *p, char *buf, size_t len);
int  wf_check_value(
     const struct wf_param *p, const cJSON *v, char *err, size_t errlen);
cJSON *wf_value_from_text(const struct wf_param *p, const char *s);

#endif
