/*
 * ControlNet parsing and injection (see controlnet.h).
 *
 * An entry's condition image is its "image" (base64, a data URI, an
 * http(s) URL, or the name of a key in the job's inputs), else inputs.TYPE
 * ("inputs": {"canny": "..."}). "preprocess": true asks the worker to run
 * Canny on it first (canny.c); only the canny type has a preprocessor, and
 * asking one of another type is refused rather than ignored.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errout.h"
#include "controlnet.h"
#include "graph.h"
#include "util.h"

#define CN_STRENGTH_MAX 10.0   /* ControlNetApplyAdvanced's own bound */
#define CN_CANNY_MAX	1500.0 /* above the largest Sobel magnitude */

/*
 * Parses "type=file,type=file" (the controlnet-models setting). Returns 0,
 * or -1 with err.
 */
int
cn_map_parse(const char *s, struct cn_map *m, char *err, size_t errlen)
{
	const char *p = s, *eq, *end;

	memset(m, 0, sizeof *m);
	while (*p != '\0') {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq == NULL || eq == p || eq + 1 == end ||
		    eq - p >= CN_TYPE_MAX || end - eq - 1 >= CN_FILE_MAX)
			ERR_OUT("controlnet-models: '%.*s' is not TYPE=FILE",
			    (int)(end - p), p);
		if (m->n == CN_TYPES_MAX)
			ERR_OUT(
			    "controlnet-models: over %d types", CN_TYPES_MAX);
		snprintf(m->type[m->n], CN_TYPE_MAX, "%.*s", (int)(eq - p), p);
		snprintf(m->file[m->n], CN_FILE_MAX, "%.*s",
		    (int)(end - eq - 1), eq + 1);
		m->n++;
		p = *end == ',' ? end + 1 : end;
	}
	return (0);
}

/* The model file for a type, or NULL. */
const char *
cn_map_file(const struct cn_map *m, const char *type)
{
	int i;

	for (i = 0; i < m->n; i++)
		if (strcmp(m->type[i], type) == 0)
			return (m->file[i]);
	return (NULL);
}

static int
cn_check_type(const struct cn_map *m, const char *from, const char *type,
    char *err, size_t errlen)
{
	char known[512];
	int  i, o = 0;

	if (cn_map_file(m, type) != NULL)
		return (0);
	known[0] = '\0';
	for (i = 0; i < m->n && o < (int)sizeof known; i++)
		o += snprintf(known + o, sizeof known - (size_t)o, "%s%s",
		    i ? ", " : "", m->type[i]);
	ERR_OUT("%s.type: '%.32s' unknown (known: %s)", from, type, known);
}

/* Reads an optional number field in lo..hi into *out. */
static int
cn_num(const cJSON *o, const char *key, const char *from, double lo, double hi,
    double *out, char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (v == NULL)
		return (0);
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		ERR_OUT("%s.%s: must be a number", from, key);
	if (v->valuedouble < lo || v->valuedouble > hi)
		ERR_OUT("%s.%s: %g not in %g..%g", from, key, v->valuedouble,
		    lo, hi);
	*out = v->valuedouble;
	return (0);
}

/* "type:strength[:start:end]" */
static int
cn_parse_string(const char *s, const char *from, struct cn_entry *e, char *err,
    size_t errlen)
{
	char   buf[128], *f[5], *save = NULL, *tok;
	double v[3] = { 1.0, 0.0, 1.0 }, lim[3] = { CN_STRENGTH_MAX, 1, 1 };
	int    n = 0, i;

	if (strlen(s) >= sizeof buf)
		ERR_OUT("%s: over %zu bytes", from, sizeof buf - 1);
	snprintf(buf, sizeof buf, "%s", s);
	for (tok = strtok_r(buf, ":", &save); tok != NULL && n < 5;
	     tok = strtok_r(NULL, ":", &save))
		f[n++] = tok;
	if (n != 2 && n != 4)
		ERR_OUT("%s: '%s' is not TYPE:STRENGTH[:START:END]", from, s);
	for (i = 1; i < n; i++)
		if (parse_double(f[i], 0, lim[i - 1], &v[i - 1]) == -1)
			ERR_OUT("%s: '%s' not a number in 0..%g in '%s'", from,
			    f[i], lim[i - 1], s);
	if (strlen(f[0]) >= CN_TYPE_MAX)
		ERR_OUT("%s: type over %d bytes", from, CN_TYPE_MAX - 1);
	snprintf(e->type, sizeof e->type, "%s", f[0]);
	e->strength = v[0];
	e->start = v[1];
	e->end = v[2];
	return (0);
}

static int
cn_parse_object(const cJSON *o, const char *from, struct cn_entry *e, char *err,
    size_t errlen)
{
	static const char *const known[] = { "type", "strength",
		"conditioning_scale", "start", "end", "image", "preprocess",
		"low", "high" };
	const cJSON		*v;
	size_t			 i;

	cJSON_ArrayForEach(v, o) {
		for (i = 0; i < sizeof known / sizeof known[0]; i++)
			if (strcmp(v->string, known[i]) == 0)
				break;
		if (i == sizeof known / sizeof known[0])
			ERR_OUT("%s.%.64s: unknown field", from, v->string);
	}
	v = cJSON_GetObjectItemCaseSensitive(o, "type");
	if (!cJSON_IsString(v) || strlen(v->valuestring) >= CN_TYPE_MAX)
		ERR_OUT("%s.type: must be a string", from);
	snprintf(e->type, sizeof e->type, "%s", v->valuestring);
	if (cJSON_GetObjectItemCaseSensitive(o, "strength") != NULL &&
	    cJSON_GetObjectItemCaseSensitive(o, "conditioning_scale") != NULL)
		ERR_OUT(
		    "%s: give strength or conditioning_scale, not both", from);
	if (cn_num(o, "strength", from, 0, CN_STRENGTH_MAX, &e->strength, err,
		errlen) == -1 ||
	    cn_num(o, "conditioning_scale", from, 0, CN_STRENGTH_MAX,
		&e->strength, err, errlen) == -1 ||
	    cn_num(o, "start", from, 0, 1, &e->start, err, errlen) == -1 ||
	    cn_num(o, "end", from, 0, 1, &e->end, err, errlen) == -1 ||
	    cn_num(o, "low", from, 0, CN_CANNY_MAX, &e->low, err, errlen) ==
		-1 ||
	    cn_num(o, "high", from, 0, CN_CANNY_MAX, &e->high, err, errlen) ==
		-1)
		return (-1);
	v = cJSON_GetObjectItemCaseSensitive(o, "preprocess");
	if (v != NULL && !cJSON_IsBool(v))
		ERR_OUT("%s.preprocess: must be true or false", from);
	e->preprocess = cJSON_IsTrue(v);
	v = cJSON_GetObjectItemCaseSensitive(o, "image");
	if (v != NULL && (!cJSON_IsString(v) || *v->valuestring == '\0'))
		ERR_OUT(
		    "%s.image: must be an image (base64, data URI or URL) or the name of an input",
		    from);
	e->source = v != NULL ? v->valuestring : NULL;
	return (0);
}

/* Finds the condition image: e->source itself, or an inputs key. */
static int
cn_resolve_image(struct cn_entry *e, const cJSON *inputs, const char *from,
    char *err, size_t errlen)
{
	const char  *key = e->source != NULL ? e->source : e->type;
	const cJSON *v;

	if (strlen(key) < sizeof e->input &&
	    (v = cJSON_GetObjectItemCaseSensitive(inputs, key)) != NULL &&
	    cJSON_IsString(v)) {
		snprintf(e->input, sizeof e->input, "%s", key);
		e->source = v->valuestring;
		return (0);
	}
	if (e->source == NULL)
		ERR_OUT("%s: no condition image (give \"image\" or inputs.%s)",
		    from, e->type);
	return (0);
}

/*
 * One entry of "controlnets" (named from, e.g. "controlnets[1]") into e:
 * a string or an object, its type in the map, its image among inputs.
 * Returns 0, or -1 with err.
 */
int
cn_parse_entry(const cJSON *v, const char *from, const cJSON *inputs,
    const struct cn_map *m, struct cn_entry *e, char *err, size_t errlen)
{
	memset(e, 0, sizeof *e);
	e->strength = 1.0;
	e->start = 0.0;
	e->end = 1.0;
	e->low = 100;
	e->high = 200;
	if (!cJSON_IsString(v) && !cJSON_IsObject(v))
		ERR_OUT("%s: must be a string or an object", from);
	if ((cJSON_IsString(v)
		    ? cn_parse_string(v->valuestring, from, e, err, errlen)
		    : cn_parse_object(v, from, e, err, errlen)) == -1 ||
	    cn_check_type(m, from, e->type, err, errlen) == -1 ||
	    cn_resolve_image(e, inputs, from, err, errlen) == -1)
		return (-1);
	if (e->start > e->end)
		ERR_OUT("%s: start %g after end %g", from, e->start, e->end);
	if (e->low > e->high)
		ERR_OUT("%s: low %g above high %g", from, e->low, e->high);
	if (e->preprocess && strcmp(e->type, "canny") != 0)
		ERR_OUT("%s: preprocess is offered for canny only, not %s",
		    from, e->type);
	return (0);
}

/*
 * Parses the job's "controlnets" array into l, checking types against the
 * map and finding each condition image. Returns 0, or -1 with err.
 */
int
cn_parse_list(const cJSON *arr, const cJSON *inputs, const struct cn_map *m,
    struct cn_list *l, char *err, size_t errlen)
{
	const cJSON *v;
	char	     from[32];

	memset(l, 0, sizeof *l);
	cJSON_ArrayForEach(v, arr) {
		if (l->n == CN_MAX)
			ERR_OUT("controlnets: over %d entries", CN_MAX);
		snprintf(from, sizeof from, "controlnets[%d]", l->n);
		if (cn_parse_entry(
			v, from, inputs, m, &l->e[l->n], err, errlen) == -1)
			return (-1);
		l->n++;
	}
	return (0);
}

/* Finds the one sampler; its id in *id. */
static int
cn_find_sampler(
    cJSON *graph, cJSON **inputs, const char **id, char *err, size_t errlen)
{
	cJSON	   *node;
	const char *ct;
	int	    n = 0;

	cJSON_ArrayForEach(node, graph) {
		ct = graph_node_class(node);
		if (ct == NULL ||
		    (strcmp(ct, "KSampler") != 0 &&
			strcmp(ct, "KSamplerAdvanced") != 0))
			continue;
		if (n++ > 0)
			ERR_OUT(
			    "controlnets: the graph has more than one sampler (nodes %s and %s)",
			    *id, node->string);
		*id = node->string;
		*inputs = graph_node_inputs(node);
	}
	if (n == 0)
		ERR_OUT("controlnets: the graph has no KSampler");
	return (0);
}

/*
 * Inserts the ControlNet chain for l into graph; images[i] is the uploaded
 * file name of entry i's condition image. Returns 0, or -1 with err.
 */
int
cn_inject(cJSON *graph, const struct cn_list *l, const struct cn_map *m,
    const char *const *images, char *err, size_t errlen)
{
	const char *sid = NULL, *pid, *nid;
	cJSON	   *ks = NULL, *in;
	char	    pos[GRAPH_ID_MAX], neg[GRAPH_ID_MAX];
	char	    loader[GRAPH_ID_MAX], load[GRAPH_ID_MAX], id[GRAPH_ID_MAX];
	int	    i, pslot, nslot;

	if (l->n == 0)
		return (0);
	if (cn_find_sampler(graph, &ks, &sid, err, errlen) == -1)
		return (-1);
	if (!graph_link_parse(cJSON_GetObjectItemCaseSensitive(ks, "positive"),
		&pid, &pslot) ||
	    !graph_link_parse(
		cJSON_GetObjectItemCaseSensitive(ks, "negative"), &nid, &nslot))
		ERR_OUT(
		    "controlnets: sampler %s has no positive and negative links",
		    sid);
	if (strlen(pid) >= sizeof pos || strlen(nid) >= sizeof neg)
		ERR_OUT(
		    "controlnets: sampler %s links to a node id over %d bytes",
		    sid, GRAPH_ID_MAX - 1);
	snprintf(pos, sizeof pos, "%s", pid);
	snprintf(neg, sizeof neg, "%s", nid);
	for (i = 0; i < l->n; i++) {
		const struct cn_entry *e = &l->e[i];

		in = graph_node_add(graph, "ControlNetLoader", loader);
		graph_set_str(in, "control_net_name", cn_map_file(m, e->type));
		in = graph_node_add(graph, "LoadImage", load);
		graph_set_str(in, "image", images[i]);
		in = graph_node_add(graph, "ControlNetApplyAdvanced", id);
		graph_set(in, "positive", graph_link_new(pos, pslot));
		graph_set(in, "negative", graph_link_new(neg, nslot));
		graph_set(in, "control_net", graph_link_new(loader, 0));
		graph_set(in, "image", graph_link_new(load, 0));
		graph_set_num(in, "strength", e->strength);
		graph_set_num(in, "start_percent", e->start);
		graph_set_num(in, "end_percent", e->end);
		snprintf(pos, sizeof pos, "%s", id);
		snprintf(neg, sizeof neg, "%s", id);
		pslot = 0;
		nslot = 1;
	}
	graph_set(ks, "positive", graph_link_new(pos, 0));
	graph_set(ks, "negative", graph_link_new(neg, 1));
	return (0);
}
