/*
 * The resolution of a job's params against a template (see template.h):
 * wf_resolve() turns them into one value per param: the given value, else
 * one set by a preset (an enum param's "sets", such as aspect 16:9 ->
 * width 1344, height 768), else the default; then the rules that tie
 * params together. Each value is checked by its param (wfparam.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errout.h"
#include "graph.h"
#include "template.h"

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
 * problem in err and *values NULL (what was built is deleted here). With
 * we, every param is checked on its own and each error added to we
 * (unknown, misplaced, missing, or a value its rules refuse); the
 * cross-param rules run only when every param passed.
 */
int
wf_resolve(const struct wf_template *t, const cJSON *params,
    const cJSON *inputs, cJSON **values, struct wf_errors *we, char *err,
    size_t errlen)
{
	const struct wf_param *p;
	const cJSON	      *v;
	cJSON		      *out;
	size_t		       i;
	int		       bad = 0;

	*values = NULL;
	cJSON_ArrayForEach(v, params) {
		p = wf_param_find(t, v->string);
		if (p != NULL && p->type != WF_IMAGE)
			continue;
		if (p != NULL)
			snprintf(err, errlen,
			    "%s: an image goes in inputs.%s, not in params",
			    v->string, v->string);
		else
			snprintf(err, errlen,
			    "%.64s: unknown parameter (see comfyq workflows show %s)",
			    v->string, wf_name(t));
		if (wf_errors_note(we, err) == -1)
			return (-1);
		bad = 1;
	}
	out = cJSON_CreateObject();
	for (i = 0; i < wf_nparams(t); i++) {
		p = wf_param_at(t, i);
		if (p->type == WF_IMAGE) {
			if (cJSON_GetObjectItemCaseSensitive(inputs, p->name) ==
			    NULL) {
				if (!p->required)
					continue;
				snprintf(err, errlen,
				    "%s: required (give inputs.%s)", p->name,
				    p->name);
				if (wf_errors_note(we, err) == -1)
					goto fail;
				bad = 1;
				continue;
			}
			graph_set_str(out, p->name, p->name);
			continue;
		}
		if ((v = cJSON_GetObjectItemCaseSensitive(params, p->name)) ==
			NULL &&
		    (v = wf_preset(t, params, p)) == NULL)
			v = p->def;
		if (v == NULL && !p->required)
			continue;
		if (v == NULL)
			snprintf(err, errlen, "%s: required", p->name);
		if (v == NULL || wf_check_value(p, v, err, errlen) == -1) {
			if (wf_errors_note(we, err) == -1)
				goto fail;
			bad = 1;
			continue;
		}
		graph_set(out, p->name, cJSON_Duplicate(v, 1));
	}
	if (bad || wf_check_cross(t, out, err, errlen) == -1) {
		if (!bad && we != NULL)
			wf_errors_add(we, err);
		goto fail;
	}
	*values = out;
	return (0);
fail:
	cJSON_Delete(out);
	return (-1);
}
