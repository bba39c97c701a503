/*
 * What a webhook delivery says (sched_webhook.h sends it): the JSON body
 * of a terminal delivery and of a progress one, and a job's delivery state
 * as GET /v1/jobs/{id} shows it, read from the job record's wh_* and whp_*
 * fields (lua/webhook.lua, lua/webhook_progress.lua).
 */
#ifndef COMFYQ_SCHED_WHBODY_H
#define COMFYQ_SCHED_WHBODY_H

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

struct rqfn_webhook;
struct rqfn_whprog;

char *whbody_terminal(const struct rqfn_webhook *w);
char *whbody_progress(const struct rqfn_whprog *w);
void  whbody_describe(const redisReply *job_hgetall, cJSON *job);

#endif
