/*
 * ComfyUI failure mapping (see errmap.h).
 *
 * POST /prompt refusals: a 400 carries `error` (whole-prompt type) and
 * `node_errors` (per node). A model name ComfyUI does not have
 * (value_not_in_list on a *_name input) is a workflow_error; a value out of
 * range or of the wrong type, or an input image LoadImage cannot use, is
 * invalid_input; anything else the graph got wrong is workflow_error. A 5xx
 * or an unparsable body means the backend is not well: backend_unavailable.
 *
 * execution_error events: OOM by the exception type's suffix (torch has
 * used both torch.cuda.OutOfMemoryError and torch.OutOfMemoryError), a
 * CUDA fault by its text, "no face detected" from a face node, LoadImage's
 * own failures as invalid_input, the rest workflow_error.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "errmap.h"
#include "util.h"

static const char *
errmap_str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return (cJSON_IsString(v) ? v->valuestring : "");
}

static int
errmap_ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return (a >= b && strcmp(s + a - b, suffix) == 0);
}

/* Text that means the CUDA context is broken, not just this prompt. */
int
errmap_is_gpu_fault(const char *text)
{
	static const char *const faults[] = {
		"illegal memory access",
		"device-side assert",
		"unspecified launch failure",
		"CUBLAS_STATUS_EXECUTION_FAILED",
		"CUDA error: misaligned address",
		"uncorrectable ECC error",
		"CUDA error: an illegal instruction",
	};
	size_t i;

	for (i = 0; i < sizeof faults / sizeof faults[0]; i++)
		if (str_icontains(text, faults[i]))
			return (1);
	return (0);
}

/* Copies the first line of s (at most len - 1 bytes). */
static void
errmap_first_line(const char *s, char *out, size_t len)
{
	size_t n = strcspn(s, "\n");

	if (n >= len)
		n = len - 1;
	memcpy(out, s, n);
	out[n] = '\0';
}

/*
 * Reads the first failing node of a node_errors map. Returns 0 when the
 * map is empty, else 1 with the code and a message naming the node.
 */
int
errmap_node_errors(const cJSON *ne, enum errcode *code, char *msg, size_t len)
{
	const cJSON *node, *errs, *e, *extra;
	const char  *type, *input;

	if (!cJSON_IsObject(ne) || ne->child == NULL)
		return (0);
	node = ne->child;
	errs = cJSON_GetObjectItemCaseSensitive(node, "errors");
	e = cJSON_IsArray(errs) ? errs->child : NULL;
	type = errmap_str(e, "type");
	extra = cJSON_GetObjectItemCaseSensitive(e, "extra_info");
	input = errmap_str(extra, "input_name");
	snprintf(msg, len, "node %s (%s): %s: %s", node->string,
	    errmap_str(node, "class_type"), *type ? type : "error",
	    *errmap_str(e, "details") ? errmap_str(e, "details")
				      : errmap_str(e, "message"));
	if (strcmp(type, "value_not_in_list") == 0 &&
	    errmap_ends_with(input, "_name"))
		*code = EC_WORKFLOW_ERROR; /* a model ComfyUI lacks */
	else if (strcmp(type, "value_smaller_than_min") == 0 ||
	    strcmp(type, "value_bigger_than_max") == 0 ||
	    strcmp(type, "invalid_input_type") == 0 ||
	    strcmp(type, "value_not_in_list") == 0 ||
	    (strcmp(type, "custom_validation_failed") == 0 &&
		strcmp(errmap_str(node, "class_type"), "LoadImage") == 0))
		*code = EC_INVALID_INPUT;
	else
		*code = EC_WORKFLOW_ERROR;
	return (1);
}

/* A POST /prompt that was not accepted: status and body to code/message. */
enum errcode
errmap_prompt_refused(
    long status, const char *body, size_t blen, char *msg, size_t len)
{
	cJSON	    *root;
	const cJSON *err;
	enum errcode code;

	if (status != 400) {
		snprintf(msg, len,
		    "ComfyUI answered POST /prompt with HTTP %ld", status);
		return (EC_BACKEND_UNAVAILABLE);
	}
	if ((root = cJSON_ParseWithLength(body, blen)) == NULL) {
		snprintf(msg, len,
		    "ComfyUI refused the prompt (HTTP 400, unreadable body)");
		return (EC_WORKFLOW_ERROR);
	}
	if (errmap_node_errors(
		cJSON_GetObjectItemCaseSensitive(root, "node_errors"), &code,
		msg, len) == 0) {
		err = cJSON_GetObjectItemCaseSensitive(root, "error");
		snprintf(msg, len, "ComfyUI refused the prompt: %s: %s%s%s",
		    *errmap_str(err, "type") ? errmap_str(err, "type")
					     : "error",
		    errmap_str(err, "message"),
		    *errmap_str(err, "details") ? ": " : "",
		    errmap_str(err, "details"));
		code = EC_WORKFLOW_ERROR;
	}
	cJSON_Delete(root);
	return (code);
}

/* An execution_error event's data to a code and a one-line message. */
enum errcode
errmap_execution_error(const cJSON *data, char *msg, size_t len)
{
	const char *type = errmap_str(data, "exception_type");
	const char *text = errmap_str(data, "exception_message");
	const char *node = errmap_str(data, "node_type");
	char	    line[512];

	errmap_first_line(text, line, sizeof line);
	snprintf(msg, len, "%s (node %s): %s: %s", *node ? node : "?",
	    errmap_str(data, "node_id"), *type ? type : "error", line);
	if (errmap_ends_with(type, "OutOfMemoryError"))
		return (EC_OOM);
	if (errmap_is_gpu_fault(text))
		return (EC_GPU_FAULT);
	if (str_icontains(text, "no face detected"))
		return (EC_NO_FACE);
	if (strcmp(node, "LoadImage") == 0)
		return (EC_INVALID_INPUT);
	return (EC_WORKFLOW_ERROR);
}
