/*
 * comfyq workflows: the templates this machine has, with their params
 * (`workflows show NAME` in full), and comfyq render: the graph a job
 * would send to ComfyUI, without submitting it, for writing and debugging
 * templates. Neither needs Redis.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "comfyq_paths.h"
#include "graph.h"
#include "wfjob.h"

#define WORKFLOWS_USAGE                                                        \
	"usage: comfyq workflows [show NAME] [--workflows DIR] [--json]"
#define RENDER_USAGE                                                           \
	"usage: comfyq render (--workflow NAME | --graph FILE | --spec FILE) " \
	"[--param K=V ...]\n"                                                  \
	"       [--lora NAME:W[:CLIP_W] ...] "                                 \
	"[--controlnet TYPE:STRENGTH:IMAGE[:START:END] ...]\n"                 \
	"       [--input NAME=FILE_OR_URL ...] [--workflows DIR] "             \
	"[--job-id ID] [--prefix P]"

static struct wf_registry *
workflows_load(const char *dir)
{
	struct wf_registry *r;
	char		    err[1024];

	if (dir == NULL && (dir = getenv("COMFYQ_WORKFLOWS_DIR")) == NULL)
		dir = COMFYQ_DEFAULT_WORKFLOWS_DIR;
	if ((r = wf_load(dir, err, sizeof err)) == NULL)
		cli_usage_error("workflows: %s", err);
	return (r);
}

static void
workflows_default(const struct wf_param *p, char *buf, size_t len)
{
	char *s;

	if (p->required)
		snprintf(buf, len, "required");
	else if (p->random)
		snprintf(buf, len, "from job id");
	else if (p->def == NULL)
		snprintf(buf, len, "(preset)");
	else {
		s = cJSON_PrintUnformatted(p->def);
		snprintf(buf, len, "%s", s);
		cJSON_free(s);
	}
}

static void
workflows_show(const struct wf_template *t)
{
	const struct wf_output *o = wf_output(t);
	const struct wf_param  *p;
	const cJSON	       *set, *v;
	char			rule[512], def[128];
	size_t			i;

	printf("%s: %s\n", wf_name(t), wf_description(t));
	printf("output: %s, %s x %s",
	    o->kind == WF_KIND_VIDEO ? "video" : "image", o->width, o->height);
	if (o->kind == WF_KIND_VIDEO)
		printf(
		    ", %s seconds at %s frames per second (at most %lld frames)",
		    o->duration, o->fps, o->max_frames);
	printf("\nLoRAs: %s; ControlNets: %s\nparams:\n",
	    wf_accepts_loras(t) ? "yes" : "no",
	    wf_accepts_controlnets(t) ? "yes" : "no");
	for (i = 0; i < wf_nparams(t); i++) {
		p = wf_param_at(t, i);
		wf_param_rule(p, rule, sizeof rule);
		workflows_default(p, def, sizeof def);
		printf("  %-18s %-40s %-14s %s\n", p->name, rule, def,
		    p->description);
		cJSON_ArrayForEach(set, p->sets) {
			printf("  %-18s   %s:", "", set->string);
			cJSON_ArrayForEach(v, set) {
				printf(" %s=%g", v->string, v->valuedouble);
			}
			printf("\n");
		}
	}
	if (strcmp(wf_name(t), "svd_img2vid") != 0 &&
	    wf_param_find(t, "prompt"))
		printf("example: comfyq submit --workflow %s --param "
		       "prompt=\"a red fox\"\n",
		    wf_name(t));
}

int
cmd_workflows(struct cli *cli, int argc, char **argv)
{
	struct wf_registry	 *r;
	const struct wf_template *t;
	const char		 *dir = NULL, *show = NULL;
	char			 *text;
	size_t			  i, j;
	int			  k;

	for (k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			cli->json = 1;
		else if (strcmp(argv[k], "--workflows") == 0 && k + 1 < argc)
			dir = argv[++k];
		else if (strcmp(argv[k], "show") == 0 && k + 1 < argc)
			show = argv[++k];
		else
			cli_usage_error("%s\n%s", argv[k], WORKFLOWS_USAGE);
	}
	r = workflows_load(dir);
	for (i = 0; i < wf_count(r); i++) {
		t = wf_at(r, i);
		if (show != NULL && strcmp(show, wf_name(t)) != 0)
			continue;
		if (cli->json) {
			text = cJSON_PrintUnformatted(wf_json(t));
			printf("%s\n", text);
			cJSON_free(text);
		} else if (show != NULL)
			workflows_show(t);
		else {
			printf("%-20s %s\n%-20s params:", wf_name(t),
			    wf_description(t), "");
			for (j = 0; j < wf_nparams(t); j++)
				printf(" %s%s", wf_param_at(t, j)->name,
				    wf_param_at(t, j)->required ? "*" : "");
			printf("\n");
		}
		if (show != NULL)
			break;
	}
	if (show != NULL && i == wf_count(r)) {
		wf_registry_free(r);
		cli_usage_error("workflows: no template named %s", show);
	}
	wf_registry_free(r);
	return (0);
}

int
cmd_render(struct cli *cli, int argc, char **argv)
{
	struct cli_spec cs;
	struct job_spec js;
	struct wf_job  *j;
	const char     *jid = "render", *prefix = NULL;
	char	       *text, *out, err[1024], pfx[256];
	cJSON	       *g;
	int		i;

	(void)cli;
	cli_spec_init(&cs);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			cli_usage_error(
			    "%s needs a value\n%s", a, RENDER_USAGE);
		i++;
		if (strcmp(a, "--job-id") == 0)
			jid = v;
		else if (strcmp(a, "--prefix") == 0)
			prefix = v;
		else if (strcmp(a, "--workflow") == 0)
			cJSON_AddStringToObject(cs.spec, "workflow", v);
		else if (strcmp(a, "--graph") == 0)
			cJSON_AddItemToObject(
			    cs.spec, "graph", submit_graph(v));
		else if (!cli_spec_flag(&cs, a, v))
			cli_usage_error(
			    "unknown option %s\n%s", a, RENDER_USAGE);
	}
	text = cli_spec_finish(&cs, &js, &j);
	cJSON_free(text);
	if (j == NULL)
		cli_usage_error(
		    "workflow: no template named %s here (see comfyq workflows)",
		    js.workflow);
	if (prefix == NULL) {
		snprintf(pfx, sizeof pfx, "comfyq/%s/out", jid);
		prefix = pfx;
	}
	g = wf_job_render(
	    j, jid, prefix, WF_RENDER_PLACEHOLDERS, err, sizeof err);
	if (g == NULL)
		cli_usage_error("%s", err);
	out = graph_print(g);
	fputs(out, stdout);
	free(out);
	cJSON_Delete(g);
	wf_job_free(j);
	job_spec_free(&js);
	cli_spec_free(&cs);
	return (0);
}
