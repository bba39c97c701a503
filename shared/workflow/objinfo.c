/*
 * The names check (see objinfo.h). An input spec in /object_info is
 * [TYPE, {opts}] or, for a combo, [[choices...], {opts}]; V3 nodes write
 * a combo as ["COMBO", {"options": [...]}]. LoadImage's image combo lists
 * the files in input/ when /object_info was fetched, so a file uploaded
 * since is missing from a cached copy: inputs marked image_upload are
 * not checked against the list. Every model name (an input named
 * *_name), listed or not, must also obey confine.h's rule (relative, no
 * "..", no annotation): ComfyUI's folder_paths has its own check, but we
 * refuse first. File inputs are not judged here: a raw graph's were
 * checked when the job was (confine_graph()), uploads when rendered, and
 * a template's own values are the operator's.
 */
#include <stdio.h>
#include <string.h>

#include "confine.h"
#include "graph.h"
#include "objinfo.h"

/* The choices of a combo input spec, or NULL when it is no combo. */
static const cJSON *
objinfo_choices(const cJSON *spec)
{
	const cJSON *type, *opts;

	if (!cJSON_IsArray(spec))
		return (NULL);
	type = cJSON_GetArrayItem(spec, 0);
	opts = cJSON_GetArrayItem(spec, 1);
	if (cJSON_IsTrue(
		cJSON_GetObjectItemCaseSensitive(opts, "image_upload")))
		return (NULL);
	if (cJSON_IsArray(type))
		return (type);
	if (cJSON_IsString(type) && strcmp(type->valuestring, "COMBO") == 0)
		return (cJSON_GetObjectItemCaseSensitive(opts, "options"));
	return (NULL);
}

static const cJSON *
objinfo_spec(const cJSON *cls, const char *input)
{
	const cJSON *in = cJSON_GetObjectItemCaseSensitive(cls, "input");
	const cJSON *s;

	s = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(in, "required"), input);
	if (s == NULL)
		s = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(in, "optional"), input);
	return (s);
}

/* Lists up to a few choices into buf, for the error message. */
static void
objinfo_list(const cJSON *choices, char *buf, size_t len)
{
	const cJSON *c;
	size_t	     o = 0;
	int	     n = 0, total = cJSON_GetArraySize(choices);

	buf[0] = '\0';
	cJSON_ArrayForEach(c, choices) {
		if (!cJSON_IsString(c) || o >= len)
			continue;
		if (n++ == 5) {
			snprintf(buf + o, len - o, ", ... %d in all", total);
			return;
		}
		o += (size_t)snprintf(buf + o, len - o, "%s%s",
		    n > 1 ? ", " : "", c->valuestring);
	}
	if (n == 0)
		snprintf(buf, len, "none");
}

/*
 * Returns 0 when ComfyUI offers everything the graph uses, or -1 with
 * the first miss in err: "node 10 (LoraLoader) lora_name: 'anime.
 * safetensors' is not in ComfyUI's list (style.safetensors)".
 */
int
objinfo_check(
    const cJSON *graph, const cJSON *object_info, char *err, size_t errlen)
{
	const cJSON *node, *cls, *v, *choices, *c;
	const char  *ct;
	char	     list[512], why[128];

	cJSON_ArrayForEach(node, graph) {
		ct = graph_node_class(node);
		cls = cJSON_GetObjectItemCaseSensitive(object_info, ct);
		if (!cJSON_IsObject(cls)) {
			snprintf(err, errlen,
			    "node %s: class %s is not installed in ComfyUI",
			    node->string, ct);
			return (-1);
		}
		cJSON_ArrayForEach(
		    v, cJSON_GetObjectItemCaseSensitive(node, "inputs")) {
			if (cJSON_IsString(v) &&
			    confine_input(ct, v->string) == CONFINE_MODEL &&
			    confine_name(v->valuestring, why, sizeof why) ==
				-1) {
				snprintf(err, errlen,
				    "node %s (%s) %s: '%.200s' %s",
				    node->string, ct, v->string, v->valuestring,
				    why);
				return (-1);
			}
			if (!cJSON_IsString(v) ||
			    (choices = objinfo_choices(
				 objinfo_spec(cls, v->string))) == NULL)
				continue;
			cJSON_ArrayForEach(c, choices) {
				if (cJSON_IsString(c) &&
				    strcmp(c->valuestring, v->valuestring) == 0)
					break;
			}
			if (c != NULL)
				continue;
			objinfo_list(choices, list, sizeof list);
			snprintf(err, errlen,
			    "node %s (%s) %s: '%.200s' is not in ComfyUI's list (%s)",
			    node->string, ct, v->string, v->valuestring, list);
			return (-1);
		}
	}
	return (0);
}
