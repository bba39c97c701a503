/*
 * Template files and their parameter schema (see template.h).
 *
 * A file is checked whole when it is loaded: its graph validates, every
 * param target names an input the graph already has, every default obeys
 * its own rules, and every name a param refers to exists. A bad file stops
 * the program at start with "file: where: what", never a job later.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errout.h"
#include "template.h"
#include "util.h"
#include "xmalloc.h"

struct wf_template {
	char	     name[WF_NAME_MAX];
	cJSON	    *root; /* the whole file; the pointers below are in it */
	const char  *description;
	const cJSON *graph;
	struct wf_param *params;
	size_t		 nparams;
	struct wf_output out;
	const cJSON	*vram;	 /* [{"max_pixels": N, "mb": M}], ascending */
	const cJSON	*errors; /* [{"match": "...", "code": "..."}] */
	int		 loras, controlnets;
};

struct wf_registry {
	struct wf_template **t;
	size_t		     n;
};

/* The param named name of type t, or NULL. */
static const struct wf_param *
wf_param_typed(const struct wf_template *t, const char *name, int type)
{
	const struct wf_param *p = wf_param_find(t, name);

	return (p != NULL && (type == -1 || (int)p->type == type) ? p : NULL);
}

/* Checks names that params, sets and output refer to, and defaults. */
static int
wf_check_refs(const struct wf_template *t, char *err, size_t errlen)
{
	const struct wf_output *o = &t->out;
	const struct wf_param  *p;
	const cJSON	       *set, *v;
	size_t			i;

	for (i = 0; i < t->nparams; i++) {
		p = &t->params[i];
		if (wf_param_find(t, p->name) != p)
			ERR_OUT("params.%s: given twice", p->name);
		if (p->def != NULL &&
		    wf_check_value(p, p->def, err, errlen) == -1)
			return (-1);
		cJSON_ArrayForEach(set, p->sets) {
			cJSON_ArrayForEach(v, set) {
				const struct wf_param *q =
				    wf_param_find(t, v->string);

				if (q == NULL)
					ERR_OUT(
					    "params.%s: sets unknown param %s",
					    p->name, v->string);
				if (wf_check_value(q, v, err, errlen) == -1)
					return (-1);
			}
		}
		if (p->canny_enable[0] != '\0' &&
		    (wf_param_typed(t, p->canny_enable, WF_BOOL) == NULL ||
			(p->canny_type[0] != '\0' &&
			    wf_param_typed(t, p->canny_type, WF_ENUM) ==
				NULL) ||
			wf_param_typed(t, p->canny_low, WF_INT) == NULL ||
			wf_param_typed(t, p->canny_high, WF_INT) == NULL))
			ERR_OUT(
			    "params.%s: canny names a missing param", p->name);
	}
	if (wf_param_typed(t, o->width, WF_INT) == NULL ||
	    wf_param_typed(t, o->height, WF_INT) == NULL)
		ERR_OUT("output: width and height must name int params");
	if (o->count[0] != '\0' && wf_param_typed(t, o->count, WF_INT) == NULL)
		ERR_OUT("output: count must name an int param");
	if (o->kind == WF_KIND_VIDEO &&
	    (wf_param_typed(t, o->fps, -1) == NULL ||
		wf_param_typed(t, o->duration, -1) == NULL || o->nframes == 0 ||
		o->max_frames <= 0))
		ERR_OUT(
		    "output: a video needs fps, duration, frames and max_frames");
	return (0);
}

static int
wf_parse_output(struct wf_template *t, const cJSON *o, char *err, size_t errlen)
{
	struct wf_output *out = &t->out;
	const cJSON	 *kind = cJSON_GetObjectItemCaseSensitive(o, "kind");
	double		  d = 0;

	if (!cJSON_IsObject(o))
		ERR_OUT("output: must be an object");
	if (!cJSON_IsString(kind) ||
	    (strcmp(kind->valuestring, "image") != 0 &&
		strcmp(kind->valuestring, "video") != 0))
		ERR_OUT("output.kind: must be image or video");
	out->kind = kind->valuestring[0] == 'v' ? WF_KIND_VIDEO : WF_KIND_IMAGE;
	if (wf_field_name(o, "width", out->width, 1, err, errlen) == -1 ||
	    wf_field_name(o, "height", out->height, 1, err, errlen) == -1 ||
	    wf_field_name(o, "count", out->count, 0, err, errlen) == -1 ||
	    wf_field_name(o, "fps", out->fps, 0, err, errlen) == -1 ||
	    wf_field_name(o, "duration", out->duration, 0, err, errlen) == -1 ||
	    wf_field_num(o, "max_frames", NULL, &d, err, errlen) == -1)
		return (-1);
	out->max_frames = (long long)d;
	out->uniform =
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "uniform"));
	return (wf_targets_parse(t->graph,
	    cJSON_GetObjectItemCaseSensitive(o, "frames"), &out->frames,
	    &out->nframes, err, errlen));
}

static int
wf_parse_tables(struct wf_template *t, char *err, size_t errlen)
{
	const cJSON *v;
	double	     last = 0;

	t->vram = cJSON_GetObjectItemCaseSensitive(t->root, "vram");
	if (!cJSON_IsArray(t->vram) || t->vram->child == NULL)
		ERR_OUT("vram: must be a list of {max_pixels, mb}");
	cJSON_ArrayForEach(v, t->vram) {
		const cJSON *px =
		    cJSON_GetObjectItemCaseSensitive(v, "max_pixels");
		const cJSON *mb = cJSON_GetObjectItemCaseSensitive(v, "mb");

		if (!cJSON_IsNumber(px) || !cJSON_IsNumber(mb) ||
		    px->valuedouble <= last || mb->valuedouble < 0)
			ERR_OUT(
			    "vram: must be a list of {max_pixels, mb}, max_pixels ascending");
		last = px->valuedouble;
	}
	t->errors = cJSON_GetObjectItemCaseSensitive(t->root, "errors");
	cJSON_ArrayForEach(v, t->errors) {
		if (!cJSON_IsString(
			cJSON_GetObjectItemCaseSensitive(v, "match")) ||
		    !cJSON_IsString(
			cJSON_GetObjectItemCaseSensitive(v, "code")))
			ERR_OUT("errors: must be a list of {match, code}");
	}
	v = cJSON_GetObjectItemCaseSensitive(t->root, "loras");
	t->loras = v == NULL || cJSON_IsTrue(v);
	v = cJSON_GetObjectItemCaseSensitive(t->root, "controlnets");
	t->controlnets = v == NULL || cJSON_IsTrue(v);
	return (0);
}

static void
wf_template_free(struct wf_template *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nparams; i++)
		free(t->params[i].targets);
	free(t->params);
	free(t->out.frames);
	cJSON_Delete(t->root);
	free(t);
}

/* Parses a template file's text; name is the file name without .json. */
static struct wf_template *
wf_template_parse(const char *name, const char *text, char *err, size_t errlen)
{
	struct wf_template *t = xcalloc(1, sizeof *t);
	const cJSON	   *v, *params;
	char		    sub[768];
	size_t		    i = 0, images = 0;

	snprintf(t->name, sizeof t->name, "%s", name);
	if ((t->root = cJSON_Parse(text)) == NULL) {
		snprintf(err, errlen, "not valid JSON");
		goto fail;
	}
	v = cJSON_GetObjectItemCaseSensitive(t->root, "name");
	if (!cJSON_IsString(v) || strcmp(v->valuestring, name) != 0) {
		snprintf(
		    err, errlen, "name: must be \"%s\", as the file", name);
		goto fail;
	}
	v = cJSON_GetObjectItemCaseSensitive(t->root, "description");
	t->description = cJSON_IsString(v) ? v->valuestring : "";
	t->graph = cJSON_GetObjectItemCaseSensitive(t->root, "graph");
	if (graph_validate(t->graph, NULL, sub, sizeof sub) == -1) {
		snprintf(err, errlen, "graph: %s", sub);
		goto fail;
	}
	params = cJSON_GetObjectItemCaseSensitive(t->root, "params");
	if (!cJSON_IsArray(params) ||
	    cJSON_GetArraySize(params) > WF_PARAMS_MAX) {
		snprintf(err, errlen, "params: must be a list of up to %d",
		    WF_PARAMS_MAX);
		goto fail;
	}
	t->params =
	    xcalloc((size_t)cJSON_GetArraySize(params) + 1, sizeof *t->params);
	cJSON_ArrayForEach(v, params) {
		t->nparams = i + 1;
		if (wf_param_parse(
			t->graph, v, &t->params[i], sub, sizeof sub) == -1) {
			snprintf(err, errlen, "params[%zu]: %s", i, sub);
			goto fail;
		}
		if (t->params[i].type == WF_IMAGE && ++images > WF_IMAGES_MAX) {
			snprintf(err, errlen,
			    "params[%zu]: over %d image params", i,
			    WF_IMAGES_MAX);
			goto fail;
		}
		i++;
	}
	if (wf_parse_output(t,
		cJSON_GetObjectItemCaseSensitive(t->root, "output"), err,
		errlen) == -1 ||
	    wf_parse_tables(t, err, errlen) == -1 ||
	    wf_check_refs(t, err, errlen) == -1)
		goto fail;
	return (t);
fail:
	wf_template_free(t);
	return (NULL);
}

static int
wf_name_cmp(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

/*
 * Loads every dir/NAME.json, in name order. Returns the registry, or NULL
 * with "dir/NAME.json: problem" in err.
 */
struct wf_registry *
wf_load(const char *dir, char *err, size_t errlen)
{
	struct wf_registry *r = xcalloc(1, sizeof *r);
	struct dirent	   *de;
	DIR		   *d;
	char		   *names[WF_TEMPLATES_MAX], path[4096], sub[1024];
	char		   *text;
	size_t		    n = 0, i, len;

	if ((d = opendir(dir)) == NULL) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		free(r);
		return (NULL);
	}
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0 ||
		    de->d_name[0] == '.')
			continue;
		if (n == WF_TEMPLATES_MAX || len - 5 >= WF_NAME_MAX) {
			snprintf(err, errlen,
			    "%s: over %d templates, or a name over %d bytes",
			    dir, WF_TEMPLATES_MAX, WF_NAME_MAX - 1);
			goto fail;
		}
		names[n++] = xstrndup(de->d_name, len - 5);
	}
	qsort(names, n, sizeof names[0], wf_name_cmp);
	r->t = xcalloc(n + 1, sizeof *r->t);
	for (i = 0; i < n; i++) {
		if ((size_t)snprintf(path, sizeof path, "%s/%s.json", dir,
			names[i]) >= sizeof path) {
			snprintf(err, errlen, "%s: a path over %zu bytes", dir,
			    sizeof path - 1);
			goto fail;
		}
		if ((text = file_slurp(
			 path, WF_FILE_MAX, NULL, sub, sizeof sub)) == NULL) {
			snprintf(err, errlen, "%s", sub);
			goto fail;
		}
		r->t[r->n] = wf_template_parse(names[i], text, sub, sizeof sub);
		free(text);
		if (r->t[r->n] == NULL) {
			snprintf(err, errlen, "%s: %s", path, sub);
			goto fail;
		}
		r->n++;
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	closedir(d);
	return (r);
fail:
	for (i = 0; i < n; i++)
		free(names[i]);
	closedir(d);
	wf_registry_free(r);
	return (NULL);
}

void
wf_registry_free(struct wf_registry *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++)
		wf_template_free(r->t[i]);
	free(r->t);
	free(r);
}

size_t
wf_count(const struct wf_registry *r)
{
	return (r->n);
}

const struct wf_template *
wf_at(const struct wf_registry *r, size_t i)
{
	return (i < r->n ? r->t[i] : NULL);
}

const struct wf_template *
wf_find(const struct wf_registry *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->t[i]->name, name) == 0)
			return (r->t[i]);
	return (NULL);
}

const char *
wf_name(const struct wf_template *t)
{
	return (t->name);
}

const char *
wf_description(const struct wf_template *t)
{
	return (t->description);
}

/* The whole template file, as loaded. */
const cJSON *
wf_json(const struct wf_template *t)
{
	return (t->root);
}

const cJSON *
wf_graph(const struct wf_template *t)
{
	return (t->graph);
}

size_t
wf_nparams(const struct wf_template *t)
{
	return (t->nparams);
}

const struct wf_param *
wf_param_at(const struct wf_template *t, size_t i)
{
	return (i < t->nparams ? &t->params[i] : NULL);
}

const struct wf_param *
wf_param_find(const struct wf_template *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->nparams; i++)
		if (strcmp(t->params[i].name, name) == 0)
			return (&t->params[i]);
	return (NULL);
}

const struct wf_output *
wf_output(const struct wf_template *t)
{
	return (&t->out);
}

int
wf_accepts_loras(const struct wf_template *t)
{
	return (t->loras);
}

int
wf_accepts_controlnets(const struct wf_template *t)
{
	return (t->controlnets);
}

/* VRAM estimate in MB for an output of pixels (width x height). */
int
wf_vram_mb(const struct wf_template *t, long long pixels)
{
	const cJSON *v, *last = NULL;

	cJSON_ArrayForEach(v, t->vram) {
		last = v;
		if ((double)pixels <=
		    cJSON_GetObjectItemCaseSensitive(v, "max_pixels")
			->valuedouble)
			break;
	}
	return ((int)cJSON_GetObjectItemCaseSensitive(last, "mb")->valuedouble);
}

/*
 * The error code the template gives a ComfyUI exception message (such as
 * "no_face" for "InsightFace: No face detected."), or NULL.
 */
const char *
wf_error_code(const struct wf_template *t, const char *message)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, t->errors) {
		if (strstr(message,
			cJSON_GetObjectItemCaseSensitive(v, "match")
			    ->valuestring) != NULL)
			return (cJSON_GetObjectItemCaseSensitive(v, "code")
				    ->valuestring);
	}
	return (NULL);
}
