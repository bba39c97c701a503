/*
 * One job on this worker, from claim to its report: a state machine driven
 * by HTTP replies, WebSocket events, timers and heartbeat news.
 */
#ifndef COMFYQ_RUN_H
#define COMFYQ_RUN_H

#include <cjson/cJSON.h>

struct worker;
struct run;

struct run *run_start(struct worker *, const char *, const char *, int,
    const char *, size_t, long long, int);
void	    run_event(struct run *, const char *, const cJSON *);
void	    run_link(struct run *, int);
void	    run_lost(struct run *);
void	    run_cancel(struct run *);
void	    run_release(struct run *);
void	    run_abandon(struct run *);
const char *run_jid(const struct run *);
const char *run_fence(const struct run *);
const char *run_prompt_id(const struct run *);
int	    run_holds_lease(const struct run *);
int	    run_has_slot(const struct run *);
int	    run_awaits_slot(const struct run *);
void	    run_slot_granted(struct run *);

#endif
