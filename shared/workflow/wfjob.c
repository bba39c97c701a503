/*
 * A job's workflow, from spec to graph (see wfjob.h).
 *
 * Everything that can be refused is refused in wf_job_new(), before any
 * input is fetched: the template's params, LoRA entries and prompt tags,
 * ControlNet entries, which inputs exist and which are used. Rendering
 * then only fills values in: params into their targets, a seed derived
 * from the job id where none was given (a retried job draws the same
 * picture), the job's filename_prefix into every saving node, uploaded
 * file names into LoadImage nodes, then the LoRA and ControlNet surgery,
 * and a last validation of the result.
 *
 * The rendering is in wfrender.c; both share struct wf_job (wfjob_int.h).
 *
 * wf_job_new_all() runs the same checks in the same order (so its first
 * error is wf_job_new()'s) and, given a struct wf_errors, goes on past an
 * error where the next check does not depend on it: each param, LoRA and
 * ControlNet entry (wferrors.c), template string, unused input. The
 * spec-wide checks, a raw graph and the rendering stop at the first.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "confine.h"
#include "errout.h"
#include "graph.h"
#include "lora.h"
#include "wfjob.h"
#include "wfjob_int.h"
#include "xmalloc.h"

/*
 * Adds an image to upload: field is "inputs." or "controlnets[N].image"
 * before its name. A job's own images stop at WF_IMAGES_MAX, and the
 * ControlNets' (at most CN_MAX) always fit after them. Returns the new
 * entry, or NULL with err.
 */
static struct wf_input *
wfj_input_add(struct wf_job *j, const char *name, const char *field,
    const char *source, char *err, size_t errlen)
{
	struct wf_input *in;
	int		 cn = strncmp(field, "controlnets[", 12) == 0;

	if (j->nin == WF_INPUTS_MAX || (!cn && j->nin == WF_IMAGES_MAX)) {
		snprintf(err, errlen, "%s: over %d %s", field,
		    cn ? CN_MAX : WF_IMAGES_MAX,
		    cn ? "ControlNet images" : "input images");
		return (NULL);
	}
	in = &j->in[j->nin];
	if ((size_t)snprintf(in->name, sizeof in->name, "%s", name) >=
		sizeof in->name ||
	    (size_t)snprintf(in->field, sizeof in->field, "%s", field) >=
		sizeof in->field) {
		snprintf(err, errlen, "%.80s: a name over %zu bytes", field,
		    sizeof in->name - 1);
		memset(in, 0, sizeof *in);
		return (NULL);
	}
	in->source = source;
	j->nin++;
	return (in);
}

static double
wfj_value(const struct wf_job *j, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j->values, name);

	return (cJSON_IsNumber(v) ? v->valuedouble : 0);
}

/*
 * Cuts <lora:...> tags out of a template's prompt params; with we, each
 * param's refused tag is listed and the next param is read.
 */
static int
wfj_template_tags(
    struct wf_job *j, struct wf_errors *we, char *err, size_t errlen)
{
	const struct wf_param *p;
	cJSON		      *v;
	char		      *text;
	size_t		       i;
	int		       rc, bad = 0;

	for (i = 0; i < wf_nparams(j->t); i++) {
		p = wf_param_at(j->t, i);
		v = cJSON_GetObjectItemCaseSensitive(j->values, p->name);
		if (!p->lora_tags || !cJSON_IsString(v))
			continue;
		text = xstrdup(v->valuestring);
		rc = lora_parse_tags(text, p->name, &j->loras, err, errlen);
		if (rc > 0)
			graph_set_str(j->values, p->name, text);
		free(text);
		if (rc == -1 && wf_errors_note(we, err) == -1)
			return (-1);
		bad |= rc == -1;
	}
	return (bad ? -1 : 0);
}

/*
 * A string param the job gave that lands in an input naming a file or a
 * model obeys the rule a raw graph's value there obeys (confine.h): the
 * template is the operator's, the value is not. With we, each param's
 * first refused target is listed and the next param is read.
 */
static int
wfj_template_confine(const struct wf_job *j, const struct job_spec *js,
    const char *list, struct wf_errors *we, char *err, size_t errlen)
{
	const struct wf_param *p;
	const cJSON	      *v;
	const char	      *cls;
	char		       what[WF_NAME_MAX + GRAPH_ID_MAX + 160];
	size_t		       i, k;
	int		       bad = 0;

	for (i = 0; i < wf_nparams(j->t); i++) {
		p = wf_param_at(j->t, i);
		v = cJSON_GetObjectItemCaseSensitive(js->params, p->name);
		if (p->type != WF_STRING || !cJSON_IsString(v))
			continue;
		for (k = 0; k < p->ntargets; k++) {
			cls = graph_node_class(cJSON_GetObjectItemCaseSensitive(
			    wf_graph(j->t), p->targets[k].node));
			snprintf(what, sizeof what,
			    "%s (node %s (%.64s) input %s)", p->name,
			    p->targets[k].node, cls, p->targets[k].input);
			if (confine_value(what,
				confine_input(cls, p->targets[k].input),
				v->valuestring, list, NULL, err,
				errlen) == -1) {
				if (wf_errors_note(we, err) == -1)
					return (-1);
				bad = 1;
				break;
			}
		}
	}
	return (bad ? -1 : 0);
}

/*
 * Template jobs: params, image inputs, expectations. What it builds in j
 * (the values, the inputs) stays there on -1 too: wf_job_new() frees j.
 * With we, every error it finds is in we when it returns -1.
 */
static int
wfj_template(struct wf_job *j, const struct job_spec *js, const char *list,
    struct wf_errors *we, char *err, size_t errlen)
{
	const struct wf_output *o = wf_output(j->t);
	const struct wf_param  *p;
	struct wf_input	       *in;
	char			field[WF_NAME_MAX + 16];
	size_t			i;
	int			bad = 0;

	if (wf_resolve(j->t, js->params, js->inputs, &j->values, we, err,
		errlen) == -1) {
		if (we == NULL)
			return (-1);
		bad = 1;
	}
	if (js->loras != NULL && !wf_accepts_loras(j->t)) {
		snprintf(
		    err, errlen, "loras: %s takes no LoRAs", wf_name(j->t));
		if (wf_errors_note(we, err) == -1)
			return (-1);
		bad = 1;
	}
	if (js->controlnets != NULL && !wf_accepts_controlnets(j->t)) {
		snprintf(err, errlen, "controlnets: %s takes no ControlNets",
		    wf_name(j->t));
		if (wf_errors_note(we, err) == -1)
			return (-1);
		bad = 1;
	}
	/* What follows reads the resolved values. */
	if (j->values == NULL)
		return (-1);
	if (wfj_template_confine(j, js, list, we, err, errlen) == -1) {
		if (we == NULL)
			return (-1);
		bad = 1;
	}
	if (wf_accepts_loras(j->t) &&
	    wfj_template_tags(j, we, err, errlen) == -1) {
		if (we == NULL)
			return (-1);
		bad = 1;
	}
	if (bad)
		return (-1);
	for (i = 0; i < wf_nparams(j->t); i++) {
		p = wf_param_at(j->t, i);
		if (p->type != WF_IMAGE ||
		    cJSON_GetObjectItemCaseSensitive(j->values, p->name) ==
			NULL)
			continue;
		snprintf(field, sizeof field, "inputs.%s", p->name);
		if ((in = wfj_input_add(j, p->name, field,
			 cJSON_GetObjectItemCaseSensitive(js->inputs, p->name)
			     ->valuestring,
			 err, errlen)) == NULL)
			return (wf_errors_fail(we, err));
		if (p->resize) {
			in->width = (int)wfj_value(j, o->width);
			in->height = (int)wfj_value(j, o->height);
		}
		if (p->canny_enable[0] != '\0' &&
		    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
			j->values, p->canny_enable))) {
			const cJSON *ty = cJSON_GetObjectItemCaseSensitive(
			    j->values, p->canny_type);

			if (p->canny_type[0] != '\0' &&
			    (!cJSON_IsString(ty) ||
				strcmp(ty->valuestring, "canny") != 0)) {
				snprintf(err, errlen,
				    "%s: preprocessing is offered for canny only, not %s",
				    p->canny_enable,
				    cJSON_IsString(ty) ? ty->valuestring
						       : "(none)");
				return (wf_errors_fail(we, err));
			}
			in->canny = 1;
			in->low = wfj_value(j, p->canny_low);
			in->high = wfj_value(j, p->canny_high);
		}
	}
	j->expect.kind = o->kind;
	j->expect.uniform = o->uniform;
	j->expect.width = (int)wfj_value(j, o->width);
	j->expect.height = (int)wfj_value(j, o->height);
	j->expect.count = o->count[0] != '\0' ? (int)wfj_value(j, o->count) : 1;
	if (o->kind == WF_KIND_VIDEO) {
		j->expect.fps = wfj_value(j, o->fps);
		j->expect.frames =
		    (int)lround(wfj_value(j, o->duration) * j->expect.fps);
		j->expect.duration_s = j->expect.frames / j->expect.fps;
	}
	j->expect.vram_mb =
	    wf_vram_mb(j->t, (long long)j->expect.width * j->expect.height);
	return (0);
}

/*
 * Raw graphs: validation, prompt tags, inputs by LoadImage node id, and
 * every file name confined (confine.h) against list, the graph-files
 * setting (NULL where it is not known). What it builds in j (the graph,
 * the LoRAs, the inputs) stays there on -1 too: wf_job_new() frees j.
 */
static int
wfj_raw(struct wf_job *j, const struct job_spec *js, const char *list,
    char *err, size_t errlen)
{
	const cJSON *v, *node;
	cJSON	    *in, *text;
	char	     field[GRAPH_ID_MAX + 16], *s;
	int	     rc;

	if (js->params != NULL)
		ERR_OUT(
		    "params: a raw graph takes no params (set the values in the graph)");
	if (graph_validate(js->graph, NULL, err, errlen) == -1)
		return (-1);
	if ((j->graph = cJSON_Duplicate(js->graph, 1)) == NULL)
		ERR_OUT("graph: out of memory");
	cJSON_ArrayForEach(node, j->graph) {
		const char *ct = graph_node_class(node);

		in = cJSON_GetObjectItemCaseSensitive(node, "inputs");
		text = cJSON_GetObjectItemCaseSensitive(in, "text");
		if (strcmp(ct, "CLIPTextEncode") != 0 || !cJSON_IsString(text))
			continue;
		snprintf(field, sizeof field, "node %s text", node->string);
		s = xstrdup(text->valuestring);
		rc = lora_parse_tags(s, field, &j->loras, err, errlen);
		if (rc > 0)
			graph_set_str(in, "text", s);
		free(s);
		if (rc == -1)
			return (-1);
	}
	cJSON_ArrayForEach(v, js->inputs) {
		node = cJSON_GetObjectItemCaseSensitive(j->graph, v->string);
		if (node == NULL ||
		    !confine_upload_class(graph_node_class(node)))
			continue;
		snprintf(field, sizeof field, "inputs.%s", v->string);
		if (wfj_input_add(j, v->string, field, v->valuestring, err,
			errlen) == NULL)
			return (-1);
	}
	if (confine_graph(j->graph, js->inputs, list, err, errlen) == -1)
		return (-1);
	for (node = j->graph->child; node != NULL; node = node->next)
		if (strcmp(graph_node_class(node), "VHS_VideoCombine") == 0)
			j->expect.kind = WF_KIND_VIDEO;
	return (0);
}

/*
 * Every key of inputs must be used by a param, a node or a ControlNet;
 * with we, each unused one is listed.
 */
static int
wfj_inputs_used(const struct wf_job *j, const cJSON *inputs,
    struct wf_errors *we, char *err, size_t errlen)
{
	const cJSON *v;
	size_t	     i;
	int	     k, bad = 0;

	cJSON_ArrayForEach(v, inputs) {
		for (i = 0; i < (size_t)j->cn_first; i++)
			if (strcmp(j->in[i].name, v->string) == 0)
				break;
		for (k = 0; i == (size_t)j->cn_first && k < j->cns.n; k++)
			if (strcmp(j->cns.e[k].input, v->string) == 0)
				break;
		if (i < (size_t)j->cn_first || k < j->cns.n)
			continue;
		snprintf(err, errlen, "inputs.%.64s: not used (%s)", v->string,
		    j->t != NULL
			? "no image param or ControlNet of that name"
			: "no LoadImage node or ControlNet of that name");
		if (wf_errors_note(we, err) == -1)
			return (-1);
		bad = 1;
	}
	return (bad ? -1 : 0);
}

/*
 * Checks a spec against the registry and returns its workflow, or NULL
 * with *code ("unknown_workflow", "invalid_input") and the reason in err
 * (and nothing to free). The caller frees the job with wf_job_free(); it
 * keeps pointers into js, so free it before js.
 */
struct wf_job *
wf_job_new(const struct wf_registry *reg, const struct job_spec *js,
    const struct wf_opts *opts, const char **code, char *err, size_t errlen)
{
	return (wf_job_new_all(reg, js, opts, NULL, code, err, errlen));
}

/*
 * wf_job_new() that lists every independent error of the spec in we
 * (zeroed by the caller; NULL: stop at the first), the first in err.
 */
struct wf_job *
wf_job_new_all(const struct wf_registry *reg, const struct job_spec *js,
    const struct wf_opts *opts, struct wf_errors *we, const char **code,
    char *err, size_t errlen)
{
	struct wf_job *j = xcalloc(1, sizeof *j);
	const cJSON   *v;
	const char    *list = opts != NULL ? opts->graph_files : NULL, *dup;
	cJSON	      *g;
	char	       name[WF_NAME_MAX], field[WF_NAME_MAX + 16];
	int	       i, bad = 0;

	*code = "invalid_input";
	if (js->graph != NULL && opts != NULL && opts->raw_deny) {
		snprintf(err, errlen,
		    "graph: raw graphs are turned off on this worker");
		goto fail_one;
	}
	if (cJSON_GetArraySize(js->inputs) > WF_INPUTS_MAX) {
		snprintf(err, errlen,
		    "inputs: over %d entries (%d images and %d ControlNet images)",
		    WF_INPUTS_MAX, WF_IMAGES_MAX, CN_MAX);
		goto fail_one;
	}
	if ((dup = graph_dup_key(js->inputs)) != NULL) {
		snprintf(err, errlen, "inputs.%.64s: given twice", dup);
		goto fail_one;
	}
	cJSON_ArrayForEach(v, js->inputs) {
		if (strlen(v->string) >= WF_NAME_MAX) {
			snprintf(err, errlen,
			    "inputs.%.64s...: a name over %d bytes", v->string,
			    WF_NAME_MAX - 1);
			goto fail_one;
		}
	}
	if (opts != NULL && opts->cn != NULL)
		j->cn = *opts->cn;
	else if (cn_map_parse(CN_MAP_DEFAULT, &j->cn, err, errlen) == -1)
		goto fail_one;
	j->lora_scale =
	    opts != NULL && opts->lora_scale > 0 ? opts->lora_scale : 1.0;
	if (we == NULL &&
	    lora_parse_list(js->loras, &j->loras, err, errlen) == -1)
		goto fail;
	if (we != NULL &&
	    wf_errors_loras(js->loras, &j->loras, we, err, errlen) == -1)
		bad = 1;
	if (js->workflow != NULL) {
		if (reg == NULL ||
		    (j->t = wf_find(reg, js->workflow)) == NULL) {
			*code = "unknown_workflow";
			snprintf(err, errlen, "workflow: no template named %s",
			    js->workflow);
			goto fail_one;
		}
		if (wfj_template(j, js, list, we, err, errlen) == -1) {
			if (we == NULL)
				goto fail;
			bad = 1;
		}
	} else if (wfj_raw(j, js, list, err, errlen) == -1) {
		if (wf_errors_note(we, err) == -1)
			goto fail;
		bad = 1;
	}
	if (cn_parse_list(js->controlnets, js->inputs, &j->cn, &j->cns, err,
		errlen) == -1) {
		if (we == NULL)
			goto fail;
		wf_errors_cns(
		    js->controlnets, js->inputs, &j->cn, we, err, errlen);
		bad = 1;
	}
	/* Which inputs are used is known once everything above passed. */
	if (bad)
		goto fail;
	j->cn_first = (int)j->nin;
	for (i = 0; i < j->cns.n; i++) {
		struct wf_input *in;

		snprintf(name, sizeof name, "controlnet%d", i);
		snprintf(field, sizeof field, "controlnets[%d].image", i);
		if ((in = wfj_input_add(j, name, field, j->cns.e[i].source, err,
			 errlen)) == NULL)
			goto fail_one;
		in->canny = j->cns.e[i].preprocess;
		in->low = j->cns.e[i].low;
		in->high = j->cns.e[i].high;
	}
	if (wfj_inputs_used(j, js->inputs, we, err, errlen) == -1)
		goto fail;
	/* The surgery's own refusals (no checkpoint loader...) come now. */
	if ((g = wf_job_render(j, "check", NULL, WF_RENDER_PLACEHOLDERS, err,
		 errlen)) == NULL)
		goto fail_one;
	cJSON_Delete(g);
	return (j);
fail_one:
	wf_errors_fail(we, err);
fail:
	if (we != NULL)
		snprintf(err, errlen, "%s", we->first);
	wf_job_free(j);
	return (NULL);
}

size_t
wf_job_ninputs(const struct wf_job *j)
{
	return (j->nin);
}

struct wf_input *
wf_job_input(struct wf_job *j, size_t i)
{
	return (i < j->nin ? &j->in[i] : NULL);
}

const struct wf_expect *
wf_job_expect(const struct wf_job *j)
{
	return (&j->expect);
}

/* The template's error code for a ComfyUI exception message, or NULL. */
const char *
wf_job_error_code(const struct wf_job *j, const char *message)
{
	return (j->t != NULL ? wf_error_code(j->t, message) : NULL);
}

void
wf_job_free(struct wf_job *j)
{
	if (j == NULL)
		return;
	cJSON_Delete(j->values);
	cJSON_Delete(j->graph);
	free(j);
}
