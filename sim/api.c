/*
 * The small ComfyUI routes: POST/GET /prompt, /interrupt, /free,
 * /system_stats, /object_info, /features, /models, /embeddings, and the
 * sim's own GET /sim/stats (its checkpoint loads). POST
 * /prompt follows server.py's post_prompt() step by step, including what
 * makes it raise (a 500): a "number" that float() refuses, an extra_data
 * that is not an object. The priority counter advances on every accepted
 * body, valid or not, as ComfyUI's self.number does.
 */
#include <sys/sysinfo.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "log.h"
#include "sim.h"
#include "util.h"
#include "xmalloc.h"

#define GIB (1024.0 * 1024 * 1024)

static long long prompt_counter; /* PromptServer.number */

static cJSON *
api_no_prompt(void)
{
	cJSON *o = cJSON_CreateObject(), *e;

	e = cJSON_AddObjectToObject(o, "error");
	cJSON_AddStringToObject(e, "type", "no_prompt");
	cJSON_AddStringToObject(e, "message", "No prompt provided");
	cJSON_AddStringToObject(e, "details", "No prompt provided");
	cJSON_AddObjectToObject(e, "extra_info");
	cJSON_AddObjectToObject(o, "node_errors");
	return (o);
}

static cJSON *
api_number(double n, int as_float)
{
	char buf[64];

	if (!as_float)
		return (cJSON_CreateNumber(n));
	py_float_repr(n, buf, sizeof buf);
	return (cJSON_CreateRaw(buf));
}

/* extra_data with client_id and create_time, sensitive keys removed.
 * NULL when Python would raise on it. */
static cJSON *
api_extra(cJSON *body, int valid)
{
	cJSON *extra =
	    cJSON_DetachItemFromObjectCaseSensitive(body, "extra_data");
	cJSON *cid = cJSON_GetObjectItemCaseSensitive(body, "client_id");

	if (extra == NULL)
		extra = cJSON_CreateObject();
	if (!cJSON_IsObject(extra) && (cid != NULL || valid)) {
		cJSON_Delete(extra);
		return (NULL);
	}
	if (cid != NULL) {
		if (cJSON_GetObjectItemCaseSensitive(extra, "client_id"))
			cJSON_ReplaceItemInObjectCaseSensitive(
			    extra, "client_id", cJSON_Duplicate(cid, 1));
		else
			cJSON_AddItemToObject(
			    extra, "client_id", cJSON_Duplicate(cid, 1));
	}
	if (!valid)
		return (extra);
	cJSON_DeleteItemFromObjectCaseSensitive(extra, "api_key_comfy_org");
	cJSON_DeleteItemFromObjectCaseSensitive(extra, "auth_token_comfy_org");
	cJSON_DeleteItemFromObjectCaseSensitive(extra, "create_time");
	cJSON_AddNumberToObject(extra, "create_time", (double)clock_wall_ms());
	return (extra);
}

int
route_prompt_post(struct evhttp_request *req, cJSON *body)
{
	struct vresult v;
	struct prompt *p;
	cJSON	      *num, *pid, *extra, *cid, *reply;
	struct pyexc   exc;
	double	       number;
	int	       as_float = 0;
	char	       uuid[UUID_LEN], *id;

	stats_prompt_posted();
	if (faults_prompt_500())
		return (500);
	if (!cJSON_IsObject(body)) {
		if (http_json_keys(body, "number", "front") == -1 ||
		    http_json_keys(body, "prompt", "prompt") == -1)
			return (500);
		prompt_counter++;
		http_reply_json(req, 400, api_no_prompt());
		return (0);
	}
	if ((num = cJSON_GetObjectItemCaseSensitive(body, "number")) != NULL) {
		if (py_float(num, &number, &exc) == -1)
			return (500);
		as_float = 1;
	} else {
		number = (double)prompt_counter;
		if (py_truthy(cJSON_GetObjectItemCaseSensitive(body, "front")))
			number = -number;
		prompt_counter++;
	}
	if (cJSON_GetObjectItemCaseSensitive(body, "prompt") == NULL) {
		http_reply_json(req, 400, api_no_prompt());
		return (0);
	}
	if ((pid = cJSON_GetObjectItemCaseSensitive(body, "prompt_id")) != NULL)
		id = py_str(pid);
	else {
		uuid4(uuid);
		id = xstrdup(uuid);
	}
	validate_prompt(cJSON_GetObjectItemCaseSensitive(body, "prompt"),
	    cJSON_GetObjectItemCaseSensitive(body, "partial_execution_targets"),
	    &v);
	if (v.raised || (extra = api_extra(body, v.ok)) == NULL) {
		vresult_free(&v);
		free(id);
		return (500);
	}
	if (!v.ok) {
		log_job(LL_NOTICE, id, "invalid prompt: %s",
		    cJSON_GetObjectItemCaseSensitive(v.error, "message")
			->valuestring);
		reply = cJSON_CreateObject();
		cJSON_AddItemToObject(reply, "error", v.error);
		cJSON_AddItemToObject(reply, "node_errors", v.node_errors);
		v.error = v.node_errors = NULL;
		vresult_free(&v);
		cJSON_Delete(extra);
		free(id);
		http_reply_json(req, 400, reply);
		return (0);
	}
	p = xcalloc(1, sizeof *p);
	p->id = id;
	p->number = number;
	p->number_float = as_float;
	p->graph = cJSON_DetachItemFromObjectCaseSensitive(body, "prompt");
	p->extra = extra;
	p->outputs = v.outputs;
	v.outputs = NULL;
	cid = cJSON_GetObjectItemCaseSensitive(extra, "client_id");
	p->client_id = cJSON_IsString(cid) ? xstrdup(cid->valuestring) : NULL;
	p->g = graph_new(p->graph);
	reply = cJSON_CreateObject();
	cJSON_AddStringToObject(reply, "prompt_id", p->id);
	cJSON_AddItemToObject(reply, "number", api_number(number, as_float));
	cJSON_AddItemToObject(reply, "node_errors", v.node_errors);
	v.node_errors = NULL;
	vresult_free(&v);
	log_job(LL_VERBOSE, p->id, "queued (number %g, client %s)", number,
	    p->client_id != NULL ? p->client_id : "-");
	http_reply_json(req, 200, reply);
	queue_put(p);
	return (0);
}

int
route_prompt_get(struct evhttp_request *req, cJSON *body)
{
	cJSON *o = cJSON_CreateObject(), *e;

	(void)body;
	e = cJSON_AddObjectToObject(o, "exec_info");
	cJSON_AddNumberToObject(e, "queue_remaining", queue_remaining());
	http_reply_json(req, 200, o);
	return (0);
}

/* No body or not JSON: global. {"prompt_id": id}: only that prompt. */
int
route_interrupt(struct evhttp_request *req, cJSON *body)
{
	cJSON *pid;

	(void)req;
	stats_interrupt();
	if (body == NULL) {
		exec_interrupt(NULL);
		return (200);
	}
	if (!cJSON_IsObject(body))
		return (500);
	pid = cJSON_GetObjectItemCaseSensitive(body, "prompt_id");
	if (!py_truthy(pid))
		exec_interrupt(NULL);
	else
		exec_interrupt(cJSON_IsString(pid) ? pid->valuestring : "");
	return (200);
}

int
route_free(struct evhttp_request *req, cJSON *body)
{
	(void)req;
	if (!cJSON_IsObject(body))
		return (500);
	exec_free_flags(
	    py_truthy(cJSON_GetObjectItemCaseSensitive(body, "unload_models")),
	    py_truthy(cJSON_GetObjectItemCaseSensitive(body, "free_memory")));
	return (200);
}

int
route_system_stats(struct evhttp_request *req, cJSON *body)
{
	struct sysinfo si;
	cJSON	      *o = cJSON_CreateObject(), *s, *a, *d;
	double	       vtotal = (double)sim.cfg.vram_mb * 1024 * 1024, vfree;
	int	       i;

	(void)body;
	memset(&si, 0, sizeof si);
	(void)sysinfo(&si);
	vfree = vtotal - (work_model_loaded() ? 7.2 * GIB : 0.4 * GIB);
	if (vfree < 0)
		vfree = 0;
	s = cJSON_AddObjectToObject(o, "system");
	cJSON_AddStringToObject(s, "os", "linux");
	cJSON_AddNumberToObject(
	    s, "ram_total", (double)si.totalram * si.mem_unit);
	cJSON_AddNumberToObject(
	    s, "ram_free", (double)si.freeram * si.mem_unit);
	cJSON_AddStringToObject(s, "comfyui_version", sim.cfg.comfyui_version);
	cJSON_AddStringToObject(s, "required_frontend_version", "1.35.9");
	cJSON_AddNullToObject(s, "installed_templates_version");
	cJSON_AddStringToObject(s, "required_templates_version", "0.7.69");
	cJSON_AddStringToObject(
	    s, "python_version", "3.12.3 (comfyq-sim " COMFYQ_VERSION ")");
	cJSON_AddStringToObject(s, "pytorch_version", "2.7.0+cu128");
	cJSON_AddFalseToObject(s, "embedded_python");
	a = cJSON_AddArrayToObject(s, "argv");
	cJSON_AddItemToArray(a, cJSON_CreateString("main.py"));
	for (i = 1; i < sim.argc; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(sim.argv[i]));
	a = cJSON_AddArrayToObject(o, "devices");
	d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "name", sim.cfg.device_name);
	cJSON_AddStringToObject(d, "type", "cuda");
	cJSON_AddNumberToObject(d, "index", 0);
	cJSON_AddNumberToObject(d, "vram_total", vtotal);
	cJSON_AddNumberToObject(d, "vram_free", vfree);
	cJSON_AddNumberToObject(d, "torch_vram_total", vtotal - vfree);
	cJSON_AddNumberToObject(d, "torch_vram_free", 0.2 * GIB);
	cJSON_AddItemToArray(a, d);
	http_reply_json(req, 200, o);
	return (0);
}

int
route_object_info(struct evhttp_request *req, cJSON *body)
{
	(void)body;
	http_reply_json(req, 200, node_object_info(http_path_rest()));
	return (0);
}

/* The server's feature flags (/features and the WebSocket reply). */
cJSON *
api_features(void)
{
	cJSON *o = cJSON_CreateObject(), *e;

	cJSON_AddTrueToObject(o, "supports_preview_metadata");
	cJSON_AddNumberToObject(o, "max_upload_size",
	    (double)sim.cfg.max_upload_size * 1024 * 1024);
	e = cJSON_AddObjectToObject(o, "extension");
	cJSON_AddTrueToObject(
	    cJSON_AddObjectToObject(e, "manager"), "supports_v4");
	return (o);
}

int
route_features(struct evhttp_request *req, cJSON *body)
{
	(void)body;
	http_reply_json(req, 200, api_features());
	return (0);
}

/* GET /models: the folder names; /models/<folder>: its files or 404. */
int
route_models(struct evhttp_request *req, cJSON *body)
{
	static const char *const folders[] = { "checkpoints", "configs",
		"loras", "vae", "text_encoders", "diffusion_models",
		"clip_vision", "style_models", "embeddings", "diffusers",
		"vae_approx", "controlnet", "gligen", "upscale_models",
		"custom_nodes", "hypernetworks", "photomaker", "classifiers",
		"ipadapter", NULL };
	const struct strlist	*l = NULL;
	const char		*f = http_path_rest();
	cJSON			*a = cJSON_CreateArray();
	size_t			 i;
	int			 known = 0;

	(void)body;
	for (i = 0; folders[i] != NULL; i++) {
		if (f == NULL)
			cJSON_AddItemToArray(a, cJSON_CreateString(folders[i]));
		else if (strcmp(f, folders[i]) == 0)
			known = 1;
	}
	if (f != NULL && !known) {
		cJSON_Delete(a);
		return (404);
	}
	if (f != NULL) {
		if (strcmp(f, "checkpoints") == 0)
			l = &sim.checkpoints;
		else if (strcmp(f, "loras") == 0)
			l = &sim.loras;
		else if (strcmp(f, "controlnet") == 0)
			l = &sim.controlnets;
		else if (strcmp(f, "clip_vision") == 0)
			l = &sim.clip_vision;
		else if (strcmp(f, "ipadapter") == 0)
			l = &sim.ipadapters;
		for (i = 0; l != NULL && i < l->n; i++)
			cJSON_AddItemToArray(a, cJSON_CreateString(l->v[i]));
	}
	http_reply_json(req, 200, a);
	return (0);
}

int
route_embeddings(struct evhttp_request *req, cJSON *body)
{
	(void)body;
	http_reply_json(req, 200, cJSON_CreateArray());
	return (0);
}
