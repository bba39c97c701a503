/*
 * Job specs from flags, for submit and render: --lora, --controlnet,
 * --input, --spec FILE (a whole spec; flags beside it override its fields)
 * and --workflows DIR, then the check of the finished spec against the
 * template schema (shared with the worker: wfjob.c), so a bad param is
 * named before anything is sent. A template this machine does not have is
 * left to the workers, which may have more. --param values are typed by
 * the schema when the template is known ("--param prompt=1984" stays a
 * string).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "comfyq_paths.h"
#include "inputs.h"
#include "job.h"
#include "util.h"
#include "wfjob.h"

void
cli_spec_init(struct cli_spec *cs)
{
	memset(cs, 0, sizeof *cs);
	cs->spec = cJSON_CreateObject();
	cs->param_text = cJSON_CreateObject();
	cs->workflows = getenv("COMFYQ_WORKFLOWS_DIR");
}

void
cli_spec_free(struct cli_spec *cs)
{
	cJSON_Delete(cs->spec);
	cJSON_Delete(cs->param_text);
	wf_registry_free(cs->reg);
	memset(cs, 0, sizeof *cs);
}

/* An image argument: a URL stays a URL, a file becomes base64. */
static cJSON *
cli_spec_image(const char *flag, const char *arg)
{
	unsigned char *buf;
	char	       err[512], *b64;
	cJSON	      *v;
	size_t	       len;

	if (inputs_is_url(arg))
		return (cJSON_CreateString(arg));
	buf = (unsigned char *)file_slurp(
	    arg, job_limits_default.max_spec_bytes, &len, err, sizeof err);
	if (buf == NULL)
		cli_usage_error("%s: %s", flag, err);
	b64 = inputs_base64_encode(buf, len);
	v = cJSON_CreateString(b64);
	free(b64);
	free(buf);
	return (v);
}

static cJSON *
cli_spec_array(cJSON *spec, const char *name)
{
	cJSON *a = cJSON_GetObjectItemCaseSensitive(spec, name);

	return (a != NULL ? a : cJSON_AddArrayToObject(spec, name));
}

/*
 * TYPE:STRENGTH:IMAGE_FILE[:START:END]. The image may be a URL, which has
 * colons of its own: START and END are taken off the end only when both
 * are numbers.
 */
static void
cli_spec_controlnet(cJSON *spec, const char *arg)
{
	char   buf[4096], *type = buf, *strength, *image, *c1 = NULL, *c2;
	double d, se[2];
	cJSON *o;

	if (strlen(arg) >= sizeof buf)
		cli_usage_error("--controlnet: over %zu bytes", sizeof buf - 1);
	snprintf(buf, sizeof buf, "%s", arg);
	if ((strength = strchr(type, ':')) == NULL ||
	    (image = strchr(strength + 1, ':')) == NULL || image[1] == '\0')
		cli_usage_error(
		    "--controlnet: '%s' is not TYPE:STRENGTH:IMAGE_FILE[:START:END]",
		    arg);
	*strength++ = '\0';
	*image++ = '\0';
	if ((c2 = strrchr(image, ':')) != NULL) {
		*c2 = '\0';
		c1 = strrchr(image, ':');
		if (c1 == NULL || parse_double(c1 + 1, 0, 1, &se[0]) == -1 ||
		    parse_double(c2 + 1, 0, 1, &se[1]) == -1) {
			*c2 = ':';
			c1 = NULL;
		} else
			*c1 = '\0';
	}
	if (parse_double(strength, -1e300, 1e300, &d) == -1)
		cli_usage_error(
		    "--controlnet: strength '%s' not a number", strength);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "type", type);
	cJSON_AddNumberToObject(o, "strength", d);
	cJSON_AddItemToObject(
	    o, "image", cli_spec_image("--controlnet", image));
	if (c1 != NULL) {
		cJSON_AddNumberToObject(o, "start", se[0]);
		cJSON_AddNumberToObject(o, "end", se[1]);
	}
	cJSON_AddItemToArray(cli_spec_array(spec, "controlnets"), o);
}

/*
 * Handles one of the flags this file owns; returns 1 when it did, 0 when
 * the flag is someone else's.
 */
int
cli_spec_flag(struct cli_spec *cs, const char *a, const char *v)
{
	const char *eq;
	cJSON	   *in;
	char	    key[256];

	if (strcmp(a, "--lora") == 0)
		cJSON_AddItemToArray(
		    cli_spec_array(cs->spec, "loras"), cJSON_CreateString(v));
	else if (strcmp(a, "--controlnet") == 0)
		cli_spec_controlnet(cs->spec, v);
	else if (strcmp(a, "--input") == 0) {
		if ((eq = strchr(v, '=')) == NULL || eq == v ||
		    (size_t)(eq - v) >= sizeof key)
			cli_usage_error(
			    "--input: expected NAME=FILE_OR_URL, got '%s'", v);
		snprintf(key, sizeof key, "%.*s", (int)(eq - v), v);
		if ((in = cJSON_GetObjectItemCaseSensitive(
			 cs->spec, "inputs")) == NULL)
			in = cJSON_AddObjectToObject(cs->spec, "inputs");
		cJSON_DeleteItemFromObjectCaseSensitive(in, key);
		cJSON_AddItemToObject(
		    in, key, cli_spec_image("--input", eq + 1));
	} else if (strcmp(a, "--spec") == 0)
		cs->spec_file = v;
	else if (strcmp(a, "--workflows") == 0)
		cs->workflows = v;
	else if (strcmp(a, "--param") == 0) {
		/* submit_kv() types it; the schema may type it again. */
		submit_kv(cs->spec, "params", v);
		if ((eq = strchr(v, '=')) != NULL &&
		    (size_t)(eq - v) < sizeof key) {
			snprintf(key, sizeof key, "%.*s", (int)(eq - v), v);
			cJSON_DeleteItemFromObjectCaseSensitive(
			    cs->param_text, key);
			cJSON_AddStringToObject(cs->param_text, key, eq + 1);
		}
	} else
		return (0);
	return (1);
}

/* Lays the flags' fields over the --spec file's. */
static cJSON *
cli_spec_merge(struct cli_spec *cs)
{
	cJSON *base, *f, *next, *b;
	char   err[512], *text;

	if (cs->spec_file == NULL)
		return (cJSON_Duplicate(cs->spec, 1));
	text = file_slurp(cs->spec_file, job_limits_default.max_spec_bytes,
	    NULL, err, sizeof err);
	if (text == NULL)
		cli_usage_error("--spec: %s", err);
	if ((base = cJSON_Parse(text)) == NULL || !cJSON_IsObject(base))
		cli_usage_error(
		    "--spec: %s is not a JSON object", cs->spec_file);
	free(text);
	for (f = cs->spec->child; f != NULL; f = next) {
		next = f->next;
		b = cJSON_GetObjectItemCaseSensitive(base, f->string);
		if (cJSON_IsObject(b) && cJSON_IsObject(f)) {
			cJSON *k;

			cJSON_ArrayForEach(k, f) {
				cJSON_DeleteItemFromObjectCaseSensitive(
				    b, k->string);
				cJSON_AddItemToObject(
				    b, k->string, cJSON_Duplicate(k, 1));
			}
			continue;
		}
		/* A workflow given by flag replaces a graph, and back. */
		if (strcmp(f->string, "workflow") == 0)
			cJSON_DeleteItemFromObjectCaseSensitive(base, "graph");
		if (strcmp(f->string, "graph") == 0)
			cJSON_DeleteItemFromObjectCaseSensitive(
			    base, "workflow");
		cJSON_DeleteItemFromObjectCaseSensitive(base, f->string);
		cJSON_AddItemToObject(base, f->string, cJSON_Duplicate(f, 1));
	}
	return (base);
}

/* Retypes --param values by the template's schema. */
static void
cli_spec_type_params(
    const struct wf_template *t, cJSON *spec, const cJSON *texts)
{
	const struct wf_param *p;
	const cJSON	      *v;
	cJSON		      *params, *typed;

	params = cJSON_GetObjectItemCaseSensitive(spec, "params");
	cJSON_ArrayForEach(v, texts) {
		if ((p = wf_param_find(t, v->string)) == NULL)
			continue;
		if ((typed = wf_value_from_text(p, v->valuestring)) == NULL)
			cli_usage_error("--param %s: '%s' is not %s %s",
			    v->string, v->valuestring,
			    p->type == WF_INT ? "an" : "a",
			    wf_type_name(p->type));
		cJSON_ReplaceItemInObjectCaseSensitive(
		    params, v->string, typed);
	}
}

/*
 * Finishes the spec: merges --spec, types params, checks it with job.c
 * and, when this machine knows its template (or it is a raw graph), with
 * the workflow layer. Returns the spec text (cJSON_free() it); exits 2
 * on bad input. *job is the checked workflow, or NULL when unchecked.
 */
char *
cli_spec_finish(struct cli_spec *cs, struct job_spec *js, struct wf_job **job)
{
	const struct wf_template *t = NULL;
	const char		 *code;
	cJSON			 *spec, *w;
	char			 *text, err[1024];
	const char		 *dir = cs->workflows;

	*job = NULL;
	spec = cli_spec_merge(cs);
	if (dir == NULL)
		dir = COMFYQ_DEFAULT_WORKFLOWS_DIR;
	cs->reg = wf_load(dir, err, sizeof err);
	if (cs->reg == NULL && cs->workflows != NULL)
		cli_usage_error("--workflows: %s", err);
	w = cJSON_GetObjectItemCaseSensitive(spec, "workflow");
	if (cs->reg != NULL && cJSON_IsString(w) &&
	    (t = wf_find(cs->reg, w->valuestring)) != NULL)
		cli_spec_type_params(t, spec, cs->param_text);
	text = cJSON_PrintUnformatted(spec);
	cJSON_Delete(spec);
	if (job_spec_parse(js, text, strlen(text), NULL, err, sizeof err) ==
	    -1) {
		cJSON_free(text);
		cli_usage_error("%s", err);
	}
	if (t == NULL && js->graph == NULL)
		return (text); /* the workers' templates decide */
	if ((*job = wf_job_new(cs->reg, js, NULL, &code, err, sizeof err)) ==
	    NULL) {
		cJSON_free(text);
		job_spec_free(js);
		cli_usage_error("%s", err);
	}
	/* The spec goes to Redis as the user wrote it: the template's VRAM
	 * estimate travels as the enqueue option vram_mb (cmd_submit), so a
	 * repeated idempotency key matches the same spec sent by any
	 * producer. */
	return (text);
}
