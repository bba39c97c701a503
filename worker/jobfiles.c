/*
 * The files a job reads (see jobfiles.h). Which inputs name a file comes
 * from ComfyUI itself: in /object_info an upload combo carries
 * "image_upload": true (LoadImage, LoadImageMask, and likewise
 * video_upload, audio_upload for their loaders), and the node reads the
 * file its value names from input/, or from output/ or temp/ when the
 * value ends in " [output]" or " [temp]" (ComfyUI's annotated names). That
 * covers the inputs the worker uploaded (comfyq/<jid>/..., kept by the
 * janitor anyway) and, for raw graphs, existing files a job names, which
 * nothing else would keep. A name that would leave its folder (the rule
 * of shared/workflow/confine.c, which checked the job's graph already) is refused
 * rather than recorded.
 */
#include <stdio.h>
#include <string.h>

#include "confine.h"
#include "graph.h"
#include "jobfiles.h"

static const struct {
	const char *suffix;
	const char *kind;
} jobfiles_kinds[] = {
	{ " [output]", "output" },
	{ " [input]", "input" },
	{ " [temp]", "temp" },
};

/* Whether the /object_info spec of this input is an upload combo. */
static int
jobfiles_is_upload(const cJSON *cls, const char *input)
{
	const cJSON *in = cJSON_GetObjectItemCaseSensitive(cls, "input");
	const cJSON *spec, *o;
	size_t	     n;

	spec = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(in, "required"), input);
	if (spec == NULL)
		spec = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(in, "optional"), input);
	cJSON_ArrayForEach(o, cJSON_GetArrayItem(spec, 1)) {
		n = strlen(o->string);
		if (cJSON_IsTrue(o) && n > 7 &&
		    strcmp(o->string + n - 7, "_upload") == 0)
			return (1);
	}
	return (0);
}

/* "kind/path" for a file name as a loader node takes it; -1: unsafe. */
static int
jobfiles_path(const char *name, char *out, size_t outlen)
{
	const char *kind = "input";
	size_t	    n = strlen(name), k, sl;
	char	    why[128];

	for (k = 0; k < sizeof jobfiles_kinds / sizeof jobfiles_kinds[0]; k++) {
		sl = strlen(jobfiles_kinds[k].suffix);
		if (n >= sl &&
		    strcmp(name + n - sl, jobfiles_kinds[k].suffix) == 0) {
			kind = jobfiles_kinds[k].kind;
			n -= sl;
			break;
		}
	}
	if ((size_t)snprintf(out, outlen, "%s/%.*s", kind, (int)n, name) >=
	    outlen)
		return (-1);
	/* The name without its annotation follows the rule of confine.c. */
	return (confine_name(out + strlen(kind) + 1, why, sizeof why));
}

static int
jobfiles_has(const cJSON *list, const char *path)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, list)
		if (strcmp(e->valuestring, path) == 0)
			return (1);
	return (0);
}

/*
 * Returns a JSON array of the distinct "kind/path" names the graph's
 * loader nodes read (empty when none; the caller frees it), or NULL with
 * the reason in err: a name that would leave its folder, or more than
 * JOBFILES_MAX files.
 */
cJSON *
jobfiles_collect(
    const cJSON *graph, const cJSON *objinfo, char *err, size_t errlen)
{
	const cJSON *node, *cls, *v;
	cJSON	    *list = cJSON_CreateArray();
	char	     path[JOBFILES_PATH_MAX + 1];

	cJSON_ArrayForEach(node, graph) {
		cls = cJSON_GetObjectItemCaseSensitive(
		    objinfo, graph_node_class(node));
		cJSON_ArrayForEach(
		    v, cJSON_GetObjectItemCaseSensitive(node, "inputs")) {
			if (!cJSON_IsString(v) ||
			    !jobfiles_is_upload(cls, v->string))
				continue;
			if (jobfiles_path(v->valuestring, path, sizeof path) ==
			    -1) {
				snprintf(err, errlen,
				    "node %s (%s) %s: '%.200s' is not a relative path inside ComfyUI's folder",
				    node->string, graph_node_class(node),
				    v->string, v->valuestring);
				goto fail;
			}
			if (jobfiles_has(list, path))
				continue;
			if (cJSON_GetArraySize(list) == JOBFILES_MAX) {
				snprintf(err, errlen,
				    "the graph reads more than %d files",
				    JOBFILES_MAX);
				goto fail;
			}
			cJSON_AddItemToArray(list, cJSON_CreateString(path));
		}
	}
	return (list);
fail:
	cJSON_Delete(list);
	return (NULL);
}
