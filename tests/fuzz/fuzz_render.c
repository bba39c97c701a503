/*
 * libFuzzer target: workflow rendering with LoRA and ControlNet injection
 * and prompt tags, on a spec filled in code rather than parsed: the bytes
 * are JSON whose "workflow", "params", "loras", "controlnets" and
 * "inputs" go straight into a struct job_spec (as the CLI's --lora and
 * the scheduler's ComfyUI front build one), so the workflow layer's own
 * checks are what stands between them and the graph; job_spec_parse's
 * are left out on purpose (fuzz_wfjob has them). The struct's contract
 * is kept: params and inputs are objects or NULL, loras and controlnets
 * arrays or NULL; what the entries hold is anything. Without a
 * "workflow" string the first byte picks a template. Each spec goes
 * through wf_job_new_all() (every error listed) and wf_job_new(); an
 * accepted one renders with placeholders and again with every input
 * "uploaded", and both graphs must validate. A golden case ({"spec":
 * ..., "uploads": ...}) is unwrapped, so tests/data/golden seeds it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "job.h"
#include "objinfo.h"
#include "util.h"
#include "wferrors.h"
#include "wfjob.h"

#include "fuzz_wf.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char *const fuzz_templates[] = { "sdxl_txt2img", "sdxl_img2img",
	"sdxl_controlnet", "sdxl_face_ipadapter", "smoke_invert",
	"svd_img2vid" };

static const cJSON *
fuzz_field(const cJSON *o, const char *k, int array)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	if (array ? cJSON_IsArray(v) : cJSON_IsObject(v))
		return (v);
	return (NULL);
}

/* A rendered graph must be one ComfyUI takes in shape. */
static void
fuzz_check(cJSON *g, const cJSON *oi)
{
	char   err[1024], *text;
	cJSON *back;

	if (g == NULL || graph_validate(g, NULL, err, sizeof err) == -1)
		abort(); /* accepted, so it must render valid */
	(void)objinfo_check(g, oi, err, sizeof err);
	text = graph_print(g);
	if (text == NULL || (back = cJSON_Parse(text)) == NULL)
		abort(); /* printed JSON reads back */
	cJSON_Delete(back);
	free(text);
	cJSON_Delete(g);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const struct wf_opts opts = { .graph_files = "" };
	static struct wf_registry  *reg;
	static cJSON		   *oi;
	struct wf_errors	   *we;
	struct job_spec		    js;
	struct wf_job		   *j;
	struct wf_input		   *in;
	const cJSON		   *spec, *w;
	const char		   *code;
	char			    err[2048], model[WF_MODEL_MAX + 1];
	cJSON			   *root;
	size_t			    i;

	fuzz_wf_load(&reg, &oi);
	if (len < 1 ||
	    (root = cJSON_ParseWithLength((const char *)data + 1, len - 1)) ==
		NULL)
		return (0);
	spec = cJSON_GetObjectItemCaseSensitive(root, "spec");
	if (!cJSON_IsObject(spec))
		spec = root;
	memset(&js, 0, sizeof js);
	w = cJSON_GetObjectItemCaseSensitive(spec, "workflow");
	js.workflow = cJSON_IsString(w)
	    ? w->valuestring
	    : fuzz_templates[data[0] %
		  (sizeof fuzz_templates / sizeof fuzz_templates[0])];
	js.params = fuzz_field(spec, "params", 0);
	js.loras = fuzz_field(spec, "loras", 1);
	js.controlnets = fuzz_field(spec, "controlnets", 1);
	js.inputs = fuzz_field(spec, "inputs", 0);
	js.priority = "normal";
	js.max_attempts = 3;

	we = calloc(1, sizeof *we);
	if (we == NULL)
		abort();
	j = wf_job_new_all(reg, &js, &opts, we, &code, err, sizeof err);
	if (j == NULL && (we->n == 0 || err[0] == '\0'))
		abort(); /* a refusal says why */
	wf_job_free(j);
	free(we);

	if ((j = wf_job_new(reg, &js, &opts, &code, err, sizeof err)) == NULL) {
		if (err[0] == '\0')
			abort();
		cJSON_Delete(root);
		return (0);
	}
	if (wf_job_expect(j) == NULL)
		abort();
	fuzz_check(wf_job_render(j, "fuzzjob", "comfyq/fuzz/out",
		       WF_RENDER_PLACEHOLDERS, err, sizeof err),
	    oi);
	for (i = 0; i < wf_job_ninputs(j); i++) {
		in = wf_job_input(j, i);
		snprintf(in->upload, sizeof in->upload, "comfyq/fuzzjob/%s.png",
		    in->name);
	}
	fuzz_check(
	    wf_job_render(j, "fuzzjob", "comfyq/fuzz/out", 0, err, sizeof err),
	    oi);
	(void)wf_job_model(j, model);
	wf_job_free(j);
	cJSON_Delete(root);
	return (0);
}
