/*
 * One template parameter (see wfparam.h): its entry of a template file's
 * "params" parsed and checked against the graph, the rules its values obey
 * in words, and one value checked against them. Every violation is
 * reported as "<param>: <value> <rule>", the words a producer sees at
 * submit and again in the worker. Nothing here knows the template a param
 * belongs to: template.c and wfresolve.c call in, never the other way.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errout.h"
#include "util.h"
#include "wfparam.h"
#include "xmalloc.h"

static const char *const wf_type_names[] = { [WF_STRING] = "string",
	[WF_INT] = "int",
	[WF_FLOAT] = "float",
	[WF_BOOL] = "bool",
	[WF_ENUM] = "enum",
	[WF_IMAGE] = "image" };

/* A type's name as template files and the CLI write it: "int". */
const char *
wf_type_name(enum wf_type t)
{
	return (wf_type_names[t]);
}

/* The type named by v (a string), or -1 for an unknown one. */
static int
wf_parse_type(const cJSON *v, enum wf_type *t)
{
	size_t i;

	for (i = 0; cJSON_IsString(v) &&
	     i < sizeof wf_type_names / sizeof wf_type_names[0];
	     i++)
		if (strcmp(v->valuestring, wf_type_names[i]) == 0) {
			*t = (enum wf_type)i;
			return (0);
		}
	return (-1);
}

/* A number as a person writes it: 1024, 0.85, 9007199254740991. */
const char *
wf_num(char buf[32], double d)
{
	if (floor(d) == d && fabs(d) < 1e17)
		snprintf(buf, 32, "%.0f", d);
	else
		snprintf(buf, 32, "%g", d);
	return (buf);
}

/*
 * Copies the name obj.key holds (1..WF_NAME_MAX - 1 bytes) into out
 * (WF_NAME_MAX bytes), or "" when it is missing and not required.
 */
int
wf_field_name(const cJSON *obj, const char *key, char *out, int required,
    char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	*out = '\0';
	if (v == NULL && !required)
		return (0);
	if (!cJSON_IsString(v) || *v->valuestring == '\0' ||
	    strlen(v->valuestring) >= WF_NAME_MAX)
		ERR_OUT(
		    "%s: must be a name of 1..%d bytes", key, WF_NAME_MAX - 1);
	snprintf(out, WF_NAME_MAX, "%s", v->valuestring);
	return (0);
}

/*
 * The number obj.key holds in *out, left alone when it is missing; *has
 * (unless has is NULL) says whether it is there.
 */
int
wf_field_num(const cJSON *obj, const char *key, int *has, double *out,
    char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (has != NULL)
		*has = v != NULL;
	if (v == NULL)
		return (0);
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		ERR_OUT("%s: must be a number", key);
	*out = v->valuedouble;
	return (0);
}

/*
 * Parses "targets": [{"node": "5", "input": "width"}]; each must name an
 * input the graph has. *out is allocated before the entries are checked,
 * so it is the caller's to free whether this returns 0 or -1.
 */
int
wf_targets_parse(const cJSON *graph, const cJSON *arr, struct wf_target **out,
    size_t *n, char *err, size_t errlen)
{
	const cJSON *t, *node, *in, *inputs;
	size_t	     i = 0;

	*out = NULL;
	*n = 0;
	if (arr == NULL)
		return (0);
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > WF_TARGETS_MAX)
		ERR_OUT("targets: must be an array of up to %d objects",
		    WF_TARGETS_MAX);
	*out = xcalloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof **out);
	cJSON_ArrayForEach(t, arr) {
		node = cJSON_GetObjectItemCaseSensitive(t, "node");
		in = cJSON_GetObjectItemCaseSensitive(t, "input");
		if (!cJSON_IsString(node) || !cJSON_IsString(in) ||
		    strlen(node->valuestring) >= GRAPH_ID_MAX ||
		    strlen(in->valuestring) >= WF_INPUT_MAX)
			ERR_OUT("targets[%zu]: must be {\"node\": ID, "
				"\"input\": NAME}",
			    i);
		inputs = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(graph, node->valuestring),
		    "inputs");
		if (cJSON_GetObjectItemCaseSensitive(inputs, in->valuestring) ==
		    NULL)
			ERR_OUT("targets[%zu]: the graph has no input %s.%s", i,
			    node->valuestring, in->valuestring);
		snprintf((*out)[i].node, GRAPH_ID_MAX, "%s", node->valuestring);
		snprintf((*out)[i].input, WF_INPUT_MAX, "%s", in->valuestring);
		i++;
	}
	*n = i;
	return (0);
}

/*
 * Parses one entry of "params" into p (zeroed by the caller); errors name
 * the field, not the param. Its pointers point into o, except
 * p->targets: the caller frees it, whether this returns 0 or -1.
 */
int
wf_param_parse(const cJSON *graph, const cJSON *o, struct wf_param *p,
    char *err, size_t errlen)
{
	const cJSON *v, *canny;
	double	     d = 0;
	int	     has;

	if (!cJSON_IsObject(o))
		ERR_OUT("must be an object");
	if (wf_field_name(o, "name", p->name, 1, err, errlen) == -1)
		return (-1);
	if (wf_parse_type(
		cJSON_GetObjectItemCaseSensitive(o, "type"), &p->type) == -1)
		ERR_OUT(
		    "type: must be one of string, int, float, bool, enum, image");
	v = cJSON_GetObjectItemCaseSensitive(o, "description");
	p->description = cJSON_IsString(v) ? v->valuestring : "";
	p->required =
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "required"));
	p->random = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "random"));
	p->resize = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "resize"));
	p->lora_tags =
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "lora_tags"));
	p->def = cJSON_GetObjectItemCaseSensitive(o, "default");
	if (wf_field_num(o, "min", &p->has_min, &p->min, err, errlen) == -1 ||
	    wf_field_num(o, "max", &p->has_max, &p->max, err, errlen) == -1)
		return (-1);
	if (p->has_min != p->has_max || (p->has_min && p->min > p->max))
		ERR_OUT("min, max: give both, min <= max");
	if (wf_field_num(o, "multiple_of", &has, &d, err, errlen) == -1)
		return (-1);
	p->multiple_of = has ? (long long)d : 0;
	if (wf_field_num(o, "max_len", &has, &d, err, errlen) == -1)
		return (-1);
	p->max_len = has && d > 0 ? (size_t)d : 0;
	if (p->type == WF_ENUM) {
		p->values = cJSON_GetObjectItemCaseSensitive(o, "values");
		if (!cJSON_IsArray(p->values) || p->values->child == NULL)
			ERR_OUT("values: an enum needs a list of strings");
		cJSON_ArrayForEach(v, p->values) {
			if (!cJSON_IsString(v))
				ERR_OUT(
				    "values: an enum needs a list of strings");
		}
		p->sets = cJSON_GetObjectItemCaseSensitive(o, "sets");
		v = cJSON_GetObjectItemCaseSensitive(o, "lookup");
		if (v != NULL &&
		    (!cJSON_IsString(v) ||
			strcmp(v->valuestring, "controlnet") != 0))
			ERR_OUT("lookup: only \"controlnet\" is known");
		p->lookup_controlnet = v != NULL;
	}
	canny = cJSON_GetObjectItemCaseSensitive(o, "canny");
	if (canny != NULL &&
	    (p->type != WF_IMAGE ||
		wf_field_name(
		    canny, "enable", p->canny_enable, 1, err, errlen) == -1 ||
		wf_field_name(canny, "type", p->canny_type, 0, err, errlen) ==
		    -1 ||
		wf_field_name(canny, "low", p->canny_low, 1, err, errlen) ==
		    -1 ||
		wf_field_name(canny, "high", p->canny_high, 1, err, errlen) ==
		    -1)) {
		if (p->type != WF_IMAGE)
			ERR_OUT("canny: only for an image param");
		return (-1);
	}
	return (wf_targets_parse(graph,
	    cJSON_GetObjectItemCaseSensitive(o, "targets"), &p->targets,
	    &p->ntargets, err, errlen));
}

/* The rule a param's values obey, in words: "int 512..2048, x64". */
void
wf_param_rule(const struct wf_param *p, char *buf, size_t len)
{
	const cJSON *v;
	char	     a[32], b[32];
	size_t	     o;

	o = (size_t)snprintf(buf, len, "%s", wf_type_name(p->type));
	if (p->has_min && p->has_max && o < len)
		o += (size_t)snprintf(buf + o, len - o, " %s..%s",
		    wf_num(a, p->min), wf_num(b, p->max));
	if (p->multiple_of > 0 && o < len)
		o += (size_t)snprintf(
		    buf + o, len - o, ", multiple of %lld", p->multiple_of);
	if (p->max_len > 0 && o < len)
		o += (size_t)snprintf(
		    buf + o, len - o, ", up to %zu bytes", p->max_len);
	if (p->values != NULL && o < len)
		o += (size_t)snprintf(buf + o, len - o, ":");
	cJSON_ArrayForEach(v, p->values) {
		if (o < len)
			o += (size_t)snprintf(buf + o, len - o, "%s%s",
			    v == p->values->child ? " " : ", ", v->valuestring);
	}
}

/* Checks one value against its param's rules. */
int
wf_check_value(
    const struct wf_param *p, const cJSON *v, char *err, size_t errlen)
{
	const cJSON *e;
	char	     rule[512], a[32], b[32], c[32];
	double	     d;

	switch (p->type) {
	case WF_STRING:
		if (!cJSON_IsString(v))
			ERR_OUT("%s: must be a string", p->name);
		if (p->max_len > 0 && strlen(v->valuestring) > p->max_len)
			ERR_OUT("%s: %zu bytes over the %zu byte limit",
			    p->name, strlen(v->valuestring), p->max_len);
		if (p->required && *v->valuestring == '\0')
			ERR_OUT("%s: must not be empty", p->name);
		return (0);
	case WF_BOOL:
		if (!cJSON_IsBool(v))
			ERR_OUT("%s: must be true or false", p->name);
		return (0);
	case WF_ENUM:
		if (cJSON_IsString(v))
			cJSON_ArrayForEach(e, p->values) {
				if (strcmp(e->valuestring, v->valuestring) == 0)
					return (0);
			}
		wf_param_rule(p, rule, sizeof rule);
		if (cJSON_IsString(v))
			ERR_OUT("%s: '%.100s' not one of%s", p->name,
			    v->valuestring, strchr(rule, ':') + 1);
		ERR_OUT("%s: must be a string, one of%s", p->name,
		    strchr(rule, ':') + 1);
	case WF_INT:
	case WF_FLOAT:
		if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
			ERR_OUT("%s: must be a number", p->name);
		d = v->valuedouble;
		if (p->type == WF_INT && floor(d) != d)
			ERR_OUT("%s: %s not an integer", p->name, wf_num(a, d));
		if ((p->has_min && d < p->min) || (p->has_max && d > p->max))
			ERR_OUT("%s: %s not in %s..%s", p->name, wf_num(a, d),
			    wf_num(b, p->min), wf_num(c, p->max));
		if (p->multiple_of > 0 && fmod(d, (double)p->multiple_of) != 0)
			ERR_OUT("%s: %s not a multiple of %lld", p->name,
			    wf_num(a, d), p->multiple_of);
		return (0);
	case WF_IMAGE:
		if (!cJSON_IsString(v))
			ERR_OUT(
			    "%s: must be an image (base64 or URL)", p->name);
		return (0);
	}
	ERR_OUT("%s: unknown type", p->name);
}

/*
 * A value for p from command-line text: numbers for int and float, true or
 * false for bool, the text itself otherwise. NULL when it does not parse.
 */
cJSON *
wf_value_from_text(const struct wf_param *p, const char *s)
{
	double d;

	switch (p->type) {
	case WF_INT:
	case WF_FLOAT:
		if (parse_double(s, -1e300, 1e300, &d) == -1)
			return (NULL);
		return (cJSON_CreateNumber(d));
	case WF_BOOL:
		if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)
			return (cJSON_CreateBool(s[0] == 't'));
		return (NULL);
	default:
		return (cJSON_CreateString(s));
	}
}
