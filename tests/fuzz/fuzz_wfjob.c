/*
 * libFuzzer target: bytes as a job spec, through the whole workflow layer
 * (job.c, the template schema and param resolver, LoRA tags and list,
 * ControlNets, inputs, file-name confinement, render with placeholder
 * uploads, validation, the names check against the /object_info fixture,
 * printing). Anything but a clean refusal or a valid graph is a bug, and
 * so is an accepted raw graph that still names a file the job did not
 * bring. A golden case ({"spec": ...}, tests/data/golden) is unwrapped,
 * so the golden files seed the corpus as they are. tests/fuzz/run.sh
 * builds and runs it (CI runs that).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "confine.h"
#include "graph.h"
#include "job.h"
#include "objinfo.h"
#include "util.h"
#include "wfjob.h"

#include "fuzz_wf.h"

#define FUZZ_GRAPH_FILES "examples/,a.png"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* The spec of a golden case, printed; NULL when data is no such case. */
static char *
fuzz_unwrap(const uint8_t *data, size_t len)
{
	cJSON *c = cJSON_ParseWithLength((const char *)data, len), *s;
	char  *text = NULL;

	s = cJSON_GetObjectItemCaseSensitive(c, "spec");
	if (cJSON_IsObject(s) &&
	    cJSON_GetObjectItemCaseSensitive(c, "uploads") != NULL)
		text = cJSON_PrintUnformatted(s);
	cJSON_Delete(c);
	return (text);
}

/* An accepted raw graph names no file but uploads and listed ones. */
static void
fuzz_check_confined(const cJSON *g)
{
	const cJSON	 *node, *v;
	enum confine_kind k;
	char		  why[128];

	cJSON_ArrayForEach(node, g) {
		cJSON_ArrayForEach(
		    v, cJSON_GetObjectItemCaseSensitive(node, "inputs")) {
			k = confine_input(graph_node_class(node), v->string);
			if (k == CONFINE_NONE || !cJSON_IsString(v) ||
			    strncmp(v->valuestring, "<upload:", 8) == 0)
				continue;
			if (confine_name(v->valuestring, why, sizeof why) ==
				-1 ||
			    (k != CONFINE_MODEL &&
				!confine_listed(
				    FUZZ_GRAPH_FILES, v->valuestring)))
				abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const struct wf_opts opts = { .graph_files = FUZZ_GRAPH_FILES };
	static struct wf_registry  *reg;
	static cJSON		   *oi;
	struct job_spec		    js;
	struct wf_job		   *j;
	const char		   *code;
	char			    err[1024], *text, *spec;

	fuzz_wf_load(&reg, &oi);
	if ((spec = fuzz_unwrap(data, len)) != NULL) {
		data = (const uint8_t *)spec;
		len = strlen(spec);
	}
	if (job_spec_parse(
		&js, (const char *)data, len, NULL, err, sizeof err) == -1) {
		cJSON_free(spec);
		return (0);
	}
	if ((j = wf_job_new(reg, &js, &opts, &code, err, sizeof err)) != NULL) {
		cJSON *g = wf_job_render(j, "fuzz", "comfyq/fuzz/out",
		    WF_RENDER_PLACEHOLDERS, err, sizeof err);

		if (g == NULL || graph_validate(g, NULL, err, sizeof err) == -1)
			abort(); /* accepted, so it must render valid */
		if (js.graph != NULL)
			fuzz_check_confined(g);
		(void)objinfo_check(g, oi, err, sizeof err);
		text = graph_print(g);
		free(text);
		cJSON_Delete(g);
		wf_job_free(j);
	}
	job_spec_free(&js);
	cJSON_free(spec);
	return (0);
}
