/*
 * Webhook deliveries: a job's `webhook` URL gets its terminal event as a
 * signed POST (sched_sign.h), retried with backoff until
 * webhook-max-age-s after the job ended, and, when the job asked
 * (webhook_progress), its progress while it runs: best effort, coalesced
 * to one POST per webhook-progress-interval-ms at most. The delivery
 * state lives in Redis (lua/webhook.lua, lua/webhook_progress.lua), so a
 * scheduler that restarts resumes, and a lease per delivery lets several
 * schedulers run without sending one attempt twice at once. Delivery is
 * at least once: receivers dedupe by webhook-id. sched_whbody.h says what
 * each POST holds.
 */
#ifndef COMFYQ_SCHED_WEBHOOK_H
#define COMFYQ_SCHED_WEBHOOK_H

#include <stddef.h>

struct sched;
struct webhooks;

struct webhooks *webhooks_new(struct sched *s, char *err, size_t errlen);
void		 webhooks_free(struct webhooks *wh);

#endif
