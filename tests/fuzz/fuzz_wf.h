/*
 * fuzz_wf.h: what the workflow targets (fuzz_wfjob, fuzz_render) load once
 * a process: the repository's templates and the test corpus's
 * /object_info. A file that cannot be read aborts: the target is broken,
 * not its input.
 */
#ifndef FUZZ_WF_H
#define FUZZ_WF_H

#include <stdlib.h>

#include "util.h"
#include "wfjob.h"

static void
fuzz_wf_load(struct wf_registry **reg, cJSON **oi)
{
	char err[1024], *text;

	if (*reg == NULL &&
	    (*reg = wf_load(COMFYQ_WORKFLOWS_DIR, err, sizeof err)) == NULL)
		abort();
	if (*oi == NULL) {
		text = file_slurp(COMFYQ_TEST_DATA_DIR "/object_info.json",
		    1 << 20, NULL, err, sizeof err);
		if (text == NULL || (*oi = cJSON_Parse(text)) == NULL)
			abort();
		free(text);
	}
}

#endif
