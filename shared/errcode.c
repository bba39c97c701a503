/*
 * Error code names and retry rules (see errcode.h). A code is retried when
 * another attempt can reasonably succeed: the backend was away, memory ran
 * short, a GPU misbehaved (another worker takes it), ComfyUI lost the
 * prompt, or something failed inside comfyq. Bad input, a refused workflow,
 * no face, an invalid output and a timeout would fail the same way again.
 */
#include <string.h>

#include "errcode.h"

static const struct {
	const char *name;
	int	    retry;
} errcodes[EC_COUNT] = {
	[EC_INVALID_INPUT] = { "invalid_input", 0 },
	[EC_UNKNOWN_WORKFLOW] = { "unknown_workflow", 0 },
	[EC_WORKFLOW_ERROR] = { "workflow_error", 0 },
	[EC_BACKEND_UNAVAILABLE] = { "backend_unavailable", 1 },
	[EC_TIMEOUT] = { "timeout", 0 },
	[EC_STALLED] = { "stalled", 1 },
	[EC_OOM] = { "oom", 1 },
	[EC_GPU_FAULT] = { "gpu_fault", 1 },
	[EC_NO_FACE] = { "no_face", 0 },
	[EC_OUTPUT_INVALID] = { "output_invalid", 0 },
	[EC_CANCELED] = { "canceled", 0 },
	[EC_WORKER_LOST] = { "worker_lost", 0 },
	[EC_INTERNAL] = { "internal", 1 },
};

const char *
errcode_name(enum errcode c)
{
	if (c < 0 || c >= EC_COUNT)
		return ("internal");
	return (errcodes[c].name);
}

int
errcode_retryable(enum errcode c)
{
	return (c >= 0 && c < EC_COUNT && errcodes[c].retry);
}

int
errcode_parse(const char *s, enum errcode *out)
{
	int i;

	for (i = 0; i < EC_COUNT; i++) {
		if (strcmp(s, errcodes[i].name) == 0) {
			*out = (enum errcode)i;
			return (0);
		}
	}
	return (-1);
}
