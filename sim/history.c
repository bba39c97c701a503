/*
 * History: finished prompts in the order they were first finished, as
 * ComfyUI's PromptQueue.history dict (a re-used prompt_id keeps its old
 * place), at most --history-max entries (ComfyUI: 10000), the oldest
 * dropped first. Memory only: a restart loses it. An entry is written only
 * when a prompt has ended, so GET /history/<id> is {} while it is queued
 * or running, and {} for ids never seen.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "sim.h"

static struct omap *history;

static void
history_free_entry(void *p)
{
	cJSON_Delete(p);
}

void
history_put(const char *id, cJSON *entry)
{
	if (history == NULL)
		history = omap_new();
	if ((long long)omap_len(history) > sim.cfg.history_max &&
	    omap_get(history, id) == NULL)
		history_free_entry(
		    omap_del(history, omap_key(omap_first(history))));
	history_free_entry(omap_put(history, id, entry));
}

static cJSON *
history_get(const char *id)
{
	return (history != NULL ? omap_get(history, id) : NULL);
}

void
history_free_all(void)
{
	omap_free(history, history_free_entry);
	history = NULL;
}

/* int() of a query value; -1 when Python would raise (the caller: 500). */
static int
history_int(const char *s, long long *out)
{
	cJSON	    *v;
	double	     d;
	struct pyexc exc;

	if (s == NULL)
		return (0);
	v = cJSON_CreateString(s);
	if (py_int(v, &d, &exc) == -1) {
		cJSON_Delete(v);
		return (-1);
	}
	cJSON_Delete(v);
	*out = (long long)d;
	return (1);
}

/* GET /history?max_items=N&offset=M and GET /history/<id>. */
int
route_history_get(struct evhttp_request *req, cJSON *body)
{
	const char	*id = http_path_rest();
	struct omap_ent *e;
	cJSON		*out = cJSON_CreateObject(), *entry;
	long long	 max = -1, offset = -1, i = 0;
	int		 hm, ho;

	(void)body;
	if (id != NULL) {
		if ((entry = history_get(id)) != NULL)
			cJSON_AddItemReferenceToObject(out, id, entry);
		http_reply_json(req, 200, out);
		return (0);
	}
	if ((hm = history_int(http_query(req, "max_items"), &max)) == -1 ||
	    (ho = history_int(http_query(req, "offset"), &offset)) == -1) {
		cJSON_Delete(out);
		return (500);
	}
	if (history != NULL && offset < 0 && hm == 1)
		offset = (long long)omap_len(history) - max;
	for (e = history ? omap_first(history) : NULL; e != NULL;
	     e = omap_next(e), i++) {
		if (i < offset)
			continue;
		if (hm == 1 && cJSON_GetArraySize(out) >= max)
			break;
		cJSON_AddItemReferenceToObject(out, omap_key(e), omap_val(e));
	}
	http_reply_json(req, 200, out);
	return (0);
}

static void
history_delete(const char *id)
{
	if (history != NULL)
		history_free_entry(omap_del(history, id));
}

/* POST /history {"clear": true, "delete": [ids]}: 200, empty body. */
int
route_history_post(struct evhttp_request *req, cJSON *body)
{
	(void)req;
	return (http_clear_delete(body, history_free_all, history_delete));
}
