/*
 * GET /comfy/view?filename=&subfolder=&type= (see sched_comfy.h): an
 * output's bytes, named as /comfy/history names them: the file name the
 * job's output record holds, the job id as subfolder, type output.
 *
 * ComfyUI's guards come first, in its order and with its statuses and
 * empty bodies (comfyui-api.md §2.8): an annotation " [output]" etc.
 * picks the type; a filename starting with '/' or holding ".." is 400; a
 * type other than output, input or temp is 400; a subfolder that climbs
 * ("..", or '/' first) is 403. Then only outputs exist here (an upload is
 * not served back), so input and temp are 404, and so is a subfolder
 * that is not a job id, a job of another tenant, or a name the job's
 * records do not hold. The bytes come through GET /v1/jobs/{id}/outputs/{n}
 * (sched_outputs.c), so the store is confined exactly as there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "sched.h"
#include "sched_auth.h"
#include "sched_comfy.h"
#include "sched_http.h"
#include "xmalloc.h"

#define VIEW_NAME_MAX 1100

struct cview {
	struct http_wait w;
	struct sched	*s;
	char		 jid[72];
	char		 name[VIEW_NAME_MAX];
	char		 tenant[160];
};

static void
view_status(struct evhttp_request *req, int status)
{
	http_reply_json(req, status, NULL);
}

static void
view_cb(redisAsyncContext *ac, void *r, void *priv)
{
	static const struct sched_token any = { "comfy", "*" };
	struct cview		       *v = priv;
	struct evhttp_request	       *req = http_wait_end(&v->w);
	redisReply		       *h = r;
	const char		       *args[3] = { v->jid, NULL, NULL };
	cJSON			       *list = NULL, *rec;
	char				n[16];
	int				i = 0;

	(void)ac;
	if (req == NULL)
		goto out;
	if (h == NULL || h->type != REDIS_REPLY_ARRAY || h->elements != 2) {
		http_reply_redis_down(req);
		goto out;
	}
	if (h->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(h->element[0]->str, v->tenant) != 0 ||
	    h->element[1]->type != REDIS_REPLY_STRING ||
	    (list = cJSON_Parse(h->element[1]->str)) == NULL) {
		view_status(req, 404);
		goto out;
	}
	cJSON_ArrayForEach(rec, list) {
		const char *f = cJSON_GetStringValue(
		    cJSON_GetObjectItemCaseSensitive(rec, "filename"));

		if (f != NULL && strcmp(f, v->name) == 0)
			break;
		i++;
	}
	if (rec == NULL) {
		view_status(req, 404);
		goto out;
	}
	snprintf(n, sizeof n, "%d", i);
	args[1] = n;
	outputs_get(v->s, req, args, &any); /* the tenant is checked above */
out:
	cJSON_Delete(list);
	free(v);
}

static int
view_jid_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 64)
		return (0);
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
			(s[i] >= 'a' && s[i] <= 'z')))
			return (0);
	return (1);
}

SCHED_ROUTE(comfy_view)
{
	static const char *const notes[] = { " [output]", " [input]",
		" [temp]" };
	struct cview		*v;
	struct rq_cmd		 c;
	char   name[VIEW_NAME_MAX], sub[256] = "", type[32] = "output";
	char  *base;
	size_t i, nl, al;

	(void)args;
	if (http_query(req, "filename", name, sizeof name) == -1) {
		view_status(req, 404);
		return;
	}
	(void)http_query(req, "type", type, sizeof type);
	nl = strlen(name);
	for (i = 0; i < 3; i++) {
		al = strlen(notes[i]);
		if (nl > al && strcmp(name + nl - al, notes[i]) == 0) {
			snprintf(type, sizeof type, "%.*s", (int)(al - 3),
			    notes[i] + 2);
			name[nl - al] = '\0';
			break;
		}
	}
	if (name[0] == '/' || strstr(name, "..") != NULL ||
	    (strcmp(type, "output") != 0 && strcmp(type, "input") != 0 &&
		strcmp(type, "temp") != 0)) {
		view_status(req, 400);
		return;
	}
	if (http_query(req, "subfolder", sub, sizeof sub) == 0 &&
	    (sub[0] == '/' || strstr(sub, "..") != NULL)) {
		view_status(req, 403);
		return;
	}
	base = strrchr(name, '/') != NULL ? strrchr(name, '/') + 1 : name;
	if (strcmp(type, "output") != 0 || !view_jid_ok(sub) || *base == '\0') {
		view_status(req, 404);
		return;
	}
	v = xcalloc(1, sizeof *v);
	v->s = s;
	snprintf(v->jid, sizeof v->jid, "%s", sub);
	snprintf(v->name, sizeof v->name, "%s", base);
	snprintf(v->tenant, sizeof v->tenant, "%s", comfy_tenant(tok));
	rq_cmd_init(&c, "HMGET");
	rq_cmd_addf(&c, "%sjob:%s", s->prefix, v->jid);
	rq_cmd_add(&c, "tenant");
	rq_cmd_add(&c, "outputs");
	http_wait_start(&v->w, req);
	if (rq_async_call(s->rc, view_cb, v, &c) == -1) {
		http_reply_redis_down(http_wait_end(&v->w));
		free(v);
	}
	rq_cmd_free(&c);
}
