/*
 * Template parameters: the rules one value must obey, and the resolution
 * of a job's params against a template (see template.h).
 *
 * wf_resolve() turns a job's params into one value per param: the given
 * value, else one set by a preset (an enum param's "sets", such as aspect
 * 16:9 -> width 1344, height 768), else the default. Every violation is
 * reported as "<param>: <value> <rule>", the words a producer sees at
 * submit and again in the worker.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errout.h"
#include "template.h"
#include "util.h"

/* A number as a person writes it: 1024, 0.85, 9007199254740991. */
static const char *
wf_num(char buf[32], double d)
{
	if (floor(d) == d && fabs(d) < 1e17)
		snprintf(buf, 32, "%.0f", d);
	else
		snprintf(buf, 32, "%g", d);
	return (buf);
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
	cJSON_ArrayForEach(v, p->values)
	{
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
			cJSON_ArrayForEach(e, p->values)
			{
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

/* The value a preset (an enum's "sets") gives p, or NULL. */
static const cJSON *
wf_preset(
    const struct wf_template *t, const cJSON *params, const struct wf_param *p)
{
	const cJSON *chosen, *set, *v;
	size_t	     i;

	for (i = 0; i < wf_nparams(t); i++) {
		if (wf_param_at(t, i)->sets == NULL)
			continue;
		chosen = cJSON_GetObjectItemCaseSensitive(
		    params, wf_param_at(t, i)->name);
		if (chosen == NULL)
			chosen = wf_param_at(t, i)->def;
		if (!cJSON_IsString(chosen))
			continue;
		set = cJSON_GetObjectItemCaseSensitive(
		    wf_param_at(t, i)->sets, chosen->valuestring);
		if ((v = cJSON_GetObjectItemCaseSensitive(set, p->name)) !=
		    NULL)
			return (v);
	}
	return (NULL);
}

/* Cross-param rules: canny thresholds in order, video frame count. */
static int
wf_check_cross(
    const struct wf_template *t, const cJSON *values, char *err, size_t errlen)
{
	const struct wf_output *o = wf_output(t);
	const cJSON	       *a, *b;
	char			x[32], y[32], z[32];
	size_t			i;
	double			frames;

	for (i = 0; i < wf_nparams(t); i++) {
		const struct wf_param *p = wf_param_at(t, i);

		if (p->canny_enable[0] == '\0')
			continue;
		a = cJSON_GetObjectItemCaseSensitive(values, p->canny_low);
		b = cJSON_GetObjectItemCaseSensitive(values, p->canny_high);
		if (a == NULL || b == NULL)
			ERR_OUT(
			    "%s, %s: required", p->canny_low, p->canny_high);
		if (a->valuedouble > b->valuedouble)
			ERR_OUT("%s: %s above %s %s", p->canny_low,
			    wf_num(x, a->valuedouble), p->canny_high,
			    wf_num(y, b->valuedouble));
	}
	if (o->kind != WF_KIND_VIDEO)
		return (0);
	a = cJSON_GetObjectItemCaseSensitive(values, o->duration);
	b = cJSON_GetObjectItemCaseSensitive(values, o->fps);
	if (a == NULL || b == NULL)
		ERR_OUT("%s, %s: required", o->duration, o->fps);
	frames = round(a->valuedouble * b->valuedouble);
	if (frames < 1 || frames > (double)o->max_frames)
		ERR_OUT("%s: %s s at %s fps is %s frames, not in 1..%lld",
		    o->duration, wf_num(x, a->valuedouble),
		    wf_num(y, b->valuedouble), wf_num(z, frames),
		    o->max_frames);
	return (0);
}

/*
 * Resolves params (an object, or NULL) against the template: one value per
 * param in *values (an object the caller deletes), image params holding
 * their input's name. inputs is the job's inputs object (or NULL): image
 * params read their presence from it. Returns 0, or -1 with the first
 * problem in err.
 */
int
wf_resolve(const struct wf_template *t, const cJSON *params,
    const cJSON *inputs, cJSON **values, char *err, size_t errlen)
{
	const struct wf_param *p;
	const cJSON	      *v;
	cJSON		      *out;
	size_t		       i;

	*values = NULL;
	cJSON_ArrayForEach(v, params)
	{
		p = wf_param_find(t, v->string);
		if (p == NULL || p->type == WF_IMAGE) {
			if (p != NULL)
				ERR_OUT(
				    "%s: an image goes in inputs.%s, not in "
				    "params",
				    v->string, v->string);
			ERR_OUT(
			    "%.64s: unknown parameter (see comfyq workflows "
			    "show %s)",
			    v->string, wf_name(t));
		}
	}
	out = cJSON_CreateObject();
	for (i = 0; i < wf_nparams(t); i++) {
		p = wf_param_at(t, i);
		if (p->type == WF_IMAGE) {
			if (cJSON_GetObjectItemCaseSensitive(inputs, p->name) ==
			    NULL) {
				if (p->required) {
					snprintf(err, errlen,
					    "%s: required (give inputs.%s)",
					    p->name, p->name);
					goto fail;
				}
				continue;
			}
			graph_set_str(out, p->name, p->name);
			continue;
		}
		if ((v = cJSON_GetObjectItemCaseSensitive(params, p->name)) ==
			NULL &&
		    (v = wf_preset(t, params, p)) == NULL)
			v = p->def;
		if (v == NULL) {
			if (p->required) {
				snprintf(err, errlen, "%s: required", p->name);
				goto fail;
			}
			continue;
		}
		if (wf_check_value(p, v, err, errlen) == -1)
			goto fail;
		graph_set(out, p->name, cJSON_Duplicate(v, 1));
	}
	if (wf_check_cross(t, out, err, errlen) == -1)
		goto fail;
	*values = out;
	return (0);
fail:
	cJSON_Delete(out);
	return (-1);
}
