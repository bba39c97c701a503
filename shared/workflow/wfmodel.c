/*
 * The checkpoints a job's graph loads, as one key for model-aware claiming
 * (lua/claim.lua, README "Model-aware claiming"): the distinct string
 * values of every node input named ckpt_name, sorted bytewise and joined
 * with ',', cut to WF_MODEL_MAX bytes; "" when the graph loads none.
 * lua/enqueue.lua finds the same key for a raw graph by the same rule; a
 * template's graph is known only where its template is, so comfyq submit
 * and the scheduler render the job here and pass the key to enqueue.
 */
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "wfjob.h"
#include "xmalloc.h"

static int
wfm_cmp(const void *a, const void *b)
{
	return (strcmp(*(const char *const *)a, *(const char *const *)b));
}

void
wf_graph_model(const cJSON *graph, char out[WF_MODEL_MAX + 1])
{
	const cJSON *node, *v;
	const char **names = NULL;
	size_t	     n = 0, cap = 0, i, len = 0, k;

	out[0] = '\0';
	cJSON_ArrayForEach(node, graph) {
		v = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(node, "inputs"),
		    "ckpt_name");
		if (!cJSON_IsString(v) || *v->valuestring == '\0')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			names = xrealloc(names, cap * sizeof *names);
		}
		names[n++] = v->valuestring;
	}
	if (n > 0)
		qsort(names, n, sizeof *names, wfm_cmp);
	for (i = 0; i < n && len < WF_MODEL_MAX; i++) {
		if (i > 0 && strcmp(names[i], names[i - 1]) == 0)
			continue;
		if (len > 0)
			out[len++] = ',';
		for (k = 0; names[i][k] != '\0' && len < WF_MODEL_MAX; k++)
			out[len++] = names[i][k];
	}
	out[len] = '\0';
	free(names);
}

int
wf_job_model(struct wf_job *j, char out[WF_MODEL_MAX + 1])
{
	char   err[256];
	cJSON *g;

	out[0] = '\0';
	if ((g = wf_job_render(j, "0", NULL, WF_RENDER_PLACEHOLDERS, err,
		 sizeof err)) == NULL)
		return (-1);
	wf_graph_model(g, out);
	cJSON_Delete(g);
	return (0);
}
