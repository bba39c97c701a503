/*
 * libFuzzer target: bytes as a job spec, through the whole workflow layer
 * (job.c, the template schema, LoRA tags and list, ControlNets, inputs,
 * render with placeholder uploads, validation, printing). Anything but a
 * clean refusal or a valid graph is a bug. Build with clang:
 *   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCOMFYQ_FUZZ=ON
 *   cmake --build build-fuzz --target fuzz_wfjob
 *   build-fuzz/bin/fuzz_wfjob tests/data/golden -max_total_time=60
 * (the golden cases' specs are a good seed corpus once unwrapped; any
 * JSON does).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "job.h"
#include "wfjob.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct wf_registry *reg;
	struct job_spec		   js;
	struct wf_job		  *j;
	const char		  *code;
	char			   err[1024], *text;
	cJSON			  *g;

	if (reg == NULL &&
	    (reg = wf_load(COMFYQ_WORKFLOWS_DIR, err, sizeof err)) == NULL)
		abort();
	if (job_spec_parse(
		&js, (const char *)data, len, NULL, err, sizeof err) == -1)
		return (0);
	if ((j = wf_job_new(reg, &js, NULL, &code, err, sizeof err)) != NULL) {
		g = wf_job_render(j, "fuzz", "comfyq/fuzz/out",
		    WF_RENDER_PLACEHOLDERS, err, sizeof err);
		if (g == NULL || graph_validate(g, NULL, err, sizeof err) == -1)
			abort(); /* accepted, so it must render valid */
		text = graph_print(g);
		free(text);
		cJSON_Delete(g);
		wf_job_free(j);
	}
	job_spec_free(&js);
	return (0);
}
