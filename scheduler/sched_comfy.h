/*
 * ComfyUI's own API under /comfy/ (README "ComfyUI-compatible front";
 * /work/shared/comfyui-api.md has the real server's routes and shapes),
 * served over the whole fleet from the job records:
 *
 *	sched_comfy.c		POST /comfy/prompt: a prompt becomes a raw-graph
 *				job; the error replies; the keys below
 *	sched_comfy_upload.c	POST /comfy/upload/image: the input store
 *	sched_comfy_history.c	/comfy/history, /view, /queue, /prompt (GET),
 *				/interrupt: read from the job records
 *	sched_comfy_view.c	GET /comfy/view: output bytes
 *	sched_comfy_info.c	/comfy/system_stats, /object_info
 *	sched_comfy_ws.c	GET /comfy/ws: ComfyUI's events from the stream
 *
 * Redis, under the queue's prefix, per tenant (the token's prefix, or
 * COMFY_TENANT_DEFAULT when the token sees every tenant or auth is off):
 *	comfy:number			INCR: ComfyUI's queue number
 *	comfy:jobs:<tenant>		zset jid -> created ms, the last
 *					COMFY_RECENT_MAX prompts (TTL)
 *	comfy:pid:<tenant>:<prompt id>	string: the job id (TTL)
 *	comfy:upload:<tenant>:<name>	string: uploaded bytes (TTL)
 * and the job's meta.comfy = {prompt_id?, client_id?, number}: a job
 * record says by itself which prompt it is.
 */
#ifndef COMFYQ_SCHED_COMFY_H
#define COMFYQ_SCHED_COMFY_H

#include <hiredis/hiredis.h>

#include <cjson/cJSON.h>

#include "sched_routes.h"

#define COMFY_TENANT_DEFAULT "comfy"
#define COMFY_TTL_S	     (7 * 86400) /* a prompt id's mapping, the list */
#define COMFY_UPLOAD_TTL_S   86400	 /* an upload */
#define COMFY_RECENT_MAX     1000	 /* prompts listed per tenant */
#define COMFY_PID_MAX	     64

/* The route handlers are declared in sched_routes.h. */

/* The tenant a caller's prompts run as and are listed under. */
const char *comfy_tenant(const struct sched_token *tok);
/* Whether s is a prompt id: [0-9A-Za-z_-]{1,COMFY_PID_MAX}. */
int comfy_pid_ok(const char *s);
/* ComfyUI's error body: {"error":{type,message,details,extra_info:{}},
 * "node_errors":node_errors or {}}; takes node_errors over. */
void comfy_reply_error(struct evhttp_request *req, int status, const char *type,
    const char *message, const char *details, cJSON *node_errors);
/* 200 with no body, as ComfyUI answers its mutating POSTs. */
void comfy_reply_empty(struct evhttp_request *req);

/* sched_comfy_history.c: the prompt id a job record answers to; a job's
 * output records (JSON text) grouped by node as ComfyUI's UI dicts,
 * {node: {images: [{filename, subfolder: jid, type: "output"}]}}. */
const char *comfy_job_pid(const char *jid, const cJSON *meta);
cJSON	   *comfy_outputs(const char *jid, const char *records);
/* From the worker's node lists of an attempt (README, Events: nodes):
 * the cached node ids as a new array; and the fields of an
 * execution_error (err) or execution_interrupted message added to d:
 * node_id (where ComfyUI was), node_type (null), executed (the nodes
 * that finished), and for an error our code and message as ComfyUI's
 * exception fields. */
cJSON *comfy_cached(const cJSON *nodes);
void   comfy_end_fields(
      cJSON *d, const cJSON *nodes, int err, const char *code, const char *msg);

#endif
