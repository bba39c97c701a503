/*
 * Rendering a job's graph (see wfjob.h): params into their targets, a seed
 * derived from the job id where none was given (a retried job draws the
 * same picture), the job's filename_prefix into every saving node,
 * uploaded file names into LoadImage nodes, then the LoRA and ControlNet
 * surgery, and a last validation of the result. Everything that can be
 * refused was refused by wf_job_new() (wfjob.c) before any input was
 * fetched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "confine.h"
#include "errout.h"
#include "graph.h"
#include "wfjob.h"
#include "wfjob_int.h"
#include "xmalloc.h"

/* A seed from the job id (FNV-1a), below 2^53 so JSON keeps it exact. */
unsigned long long
wf_seed(const char *job_id)
{
	unsigned long long h = 0xcbf29ce484222325ULL;

	for (; *job_id != '\0'; job_id++)
		h = (h ^ (unsigned char)*job_id) * 0x100000001b3ULL;
	return (h & ((1ULL << 53) - 1));
}

/* The upload name of input i, or a placeholder, or NULL. */
static const char *
wfj_upload(struct wf_job *j, size_t i, int flags, char *err, size_t errlen)
{
	struct wf_input *in = &j->in[i];
	char		 name[WF_NAME_MAX], why[128];

	/* ComfyUI's name: a full buffer may be a cut one. */
	if (strlen(in->upload) >= sizeof in->upload - 1) {
		snprintf(err, errlen,
		    "%s: ComfyUI's name for the upload is over %zu bytes",
		    in->field, sizeof in->upload - 2);
		return (NULL);
	}
	if (in->upload[0] != '\0' &&
	    confine_name(in->upload, why, sizeof why) == -1) {
		snprintf(err, errlen,
		    "%s: ComfyUI's name for the upload, '%.100s', %s",
		    in->field, in->upload, why);
		return (NULL);
	}
	if (in->upload[0] != '\0')
		return (in->upload);
	if (!(flags & WF_RENDER_PLACEHOLDERS)) {
		snprintf(err, errlen, "%s: not uploaded", in->field);
		return (NULL);
	}
	memcpy(name, in->name, sizeof name);
	snprintf(j->ph[i], sizeof j->ph[i], "<upload:%s>", name);
	return (j->ph[i]);
}

/* The JSON value a param's value takes in the graph. */
static cJSON *
wfj_graph_value(struct wf_job *j, const struct wf_param *p, const cJSON *v,
    int flags, char *err, size_t errlen)
{
	const char *s;
	size_t	    i;

	if (p->lookup_controlnet)
		return (
		    cJSON_CreateString(cn_map_file(&j->cn, v->valuestring)));
	if (p->type != WF_IMAGE)
		return (cJSON_Duplicate(v, 1));
	for (i = 0; i < j->nin; i++)
		if (strcmp(j->in[i].name, p->name) == 0)
			break;
	if ((s = wfj_upload(j, i, flags, err, errlen)) == NULL)
		return (NULL);
	return (cJSON_CreateString(s));
}

static void
wfj_set_targets(cJSON *g, const struct wf_target *t, size_t n, cJSON *v)
{
	size_t i;

	for (i = 0; i < n; i++)
		graph_set(graph_node_inputs(
			      cJSON_GetObjectItemCaseSensitive(g, t[i].node)),
		    t[i].input, cJSON_Duplicate(v, 1));
	cJSON_Delete(v);
}

/* Fills a template's graph with the job's values. */
static cJSON *
wfj_fill(
    struct wf_job *j, const char *job_id, int flags, char *err, size_t errlen)
{
	const struct wf_output *o = wf_output(j->t);
	const struct wf_param  *p;
	const cJSON	       *v;
	cJSON		       *g, *gv;
	unsigned long long	seed;
	size_t			i;

	if ((g = cJSON_Duplicate(wf_graph(j->t), 1)) == NULL) {
		snprintf(err, errlen, "graph: out of memory");
		return (NULL);
	}
	for (i = 0; i < wf_nparams(j->t); i++) {
		p = wf_param_at(j->t, i);
		v = cJSON_GetObjectItemCaseSensitive(j->values, p->name);
		if (v == NULL && p->random) {
			seed = wf_seed(job_id);
			if (p->has_max && (double)seed > p->max)
				seed %= (unsigned long long)p->max + 1;
			gv = cJSON_CreateNumber((double)seed);
		} else if (v == NULL)
			continue;
		else if ((gv = wfj_graph_value(j, p, v, flags, err, errlen)) ==
		    NULL) {
			cJSON_Delete(g);
			return (NULL);
		}
		wfj_set_targets(g, p->targets, p->ntargets, gv);
	}
	if (o->kind == WF_KIND_VIDEO)
		wfj_set_targets(g, o->frames, o->nframes,
		    cJSON_CreateNumber(j->expect.frames));
	return (g);
}

/* Sets filename_prefix on every node that saves files. */
static void
wfj_prefix(cJSON *g, const char *prefix)
{
	const struct graph_class *gc;
	cJSON			 *node;

	cJSON_ArrayForEach(node, g) {
		gc = graph_class_find(graph_node_class(node));
		if (gc != NULL && gc->output_node &&
		    cJSON_GetObjectItemCaseSensitive(
			graph_node_inputs(node), "filename_prefix") != NULL)
			graph_set_str(
			    graph_node_inputs(node), "filename_prefix", prefix);
	}
}

/*
 * Renders the graph for POST /prompt: job_id seeds a missing seed param,
 * prefix (e.g. "comfyq/<job id>/out", or NULL to keep the template's) goes
 * to every saving node. Every input needs its upload name unless flags has
 * WF_RENDER_PLACEHOLDERS. Returns a tree the caller deletes, or NULL with
 * err.
 */
cJSON *
wf_job_render(struct wf_job *j, const char *job_id, const char *prefix,
    int flags, char *err, size_t errlen)
{
	const char *cn_images[CN_MAX];
	char	    sub[512];
	cJSON	   *g;
	size_t	    i;
	int	    k;

	if (j->t != NULL)
		g = wfj_fill(j, job_id, flags, err, errlen);
	else if ((g = cJSON_Duplicate(j->graph, 1)) == NULL)
		snprintf(err, errlen, "graph: out of memory");
	if (g == NULL)
		return (NULL);
	for (i = 0; j->t == NULL && i < (size_t)j->cn_first; i++) {
		const char *s = wfj_upload(j, i, flags, err, errlen);

		if (s == NULL)
			goto fail;
		graph_set_str(
		    graph_node_inputs(
			cJSON_GetObjectItemCaseSensitive(g, j->in[i].name)),
		    "image", s);
	}
	for (k = 0; k < j->cns.n; k++)
		if ((cn_images[k] = wfj_upload(j, (size_t)(j->cn_first + k),
			 flags, err, errlen)) == NULL)
			goto fail;
	if (prefix != NULL)
		wfj_prefix(g, prefix);
	if (lora_inject(g, &j->loras, j->lora_scale, err, errlen) == -1 ||
	    cn_inject(g, &j->cns, &j->cn, cn_images, err, errlen) == -1)
		goto fail;
	if (graph_validate(g, NULL, sub, sizeof sub) == -1) {
		snprintf(err, errlen, "rendered graph: %s", sub);
		goto fail;
	}
	return (g);
fail:
	cJSON_Delete(g);
	return (NULL);
}
