/*
 * Rendering a job's graph. A raw graph is used as given, except that every
 * output node's filename_prefix becomes comfyq/<job id>/a<attempt>/out: a
 * per-attempt prefix means ComfyUI's cache can never answer with files of
 * an earlier job or attempt, and the janitor can tell which files a running
 * job still needs. Named templates come from workflows/ (not loaded by this
 * build yet: such a job ends unknown_workflow, saying so).
 */
#include <stdio.h>
#include <string.h>

#include "render.h"

/* Sets filename_prefix on every node that has one; returns the count. */
int
render_prefix(cJSON *graph, const char *prefix)
{
	cJSON *node, *inputs, *fp;
	int    n = 0;

	cJSON_ArrayForEach(node, graph)
	{
		inputs = cJSON_GetObjectItemCaseSensitive(node, "inputs");
		fp =
		    cJSON_GetObjectItemCaseSensitive(inputs, "filename_prefix");
		if (fp == NULL || cJSON_IsArray(fp))
			continue; /* absent, or a link */
		cJSON_ReplaceItemInObjectCaseSensitive(
		    inputs, "filename_prefix", cJSON_CreateString(prefix));
		n++;
	}
	return (n);
}

/*
 * Returns the graph to submit for a job (the caller frees it), or NULL
 * with a code and a message. ex receives what the outputs must satisfy.
 */
cJSON *
render_job(const struct job_spec *js, const char *jid, int attempt,
    struct out_expect *ex, enum errcode *code, char *err, size_t errlen)
{
	cJSON *g;
	char   prefix[160];

	memset(ex, 0, sizeof *ex);
	if (js->graph == NULL) {
		*code = EC_UNKNOWN_WORKFLOW;
		snprintf(err, errlen,
		    "unknown workflow '%s': this worker has "
		    "no templates loaded",
		    js->workflow ? js->workflow : "");
		return (NULL);
	}
	g = cJSON_Duplicate(js->graph, 1);
	snprintf(prefix, sizeof prefix, "comfyq/%s/a%d/out", jid, attempt);
	render_prefix(g, prefix);
	return (g);
}
