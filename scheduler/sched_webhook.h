/*
 * Webhook deliveries: a job's `webhook` URL gets its terminal event as a
 * signed POST (sched_sign.h), retried with backoff until
 * webhook-max-age-s after the job ended. The delivery state lives in Redis
 * (lua/webhook.lua), so a scheduler that restarts resumes, and a lease per
 * delivery lets several schedulers run without sending one attempt twice
 * at once. Delivery is at least once: receivers dedupe by webhook-id.
 */
#ifndef COMFYQ_SCHED_WEBHOOK_H
#define COMFYQ_SCHED_WEBHOOK_H

#include <stddef.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

struct sched;
struct webhooks;

struct webhooks *webhooks_new(struct sched *s, char *err, size_t errlen);
void		 webhooks_free(struct webhooks *wh);
void		 webhooks_describe(const redisReply *job_hgetall, cJSON *job);

#endif
