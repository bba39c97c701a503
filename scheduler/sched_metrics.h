/*
 * GET /metrics in the Prometheus text format (0.0.4). What Redis knows (job
 * counters, queue depths, slots, workers, webhook counters) is read at each
 * scrape with a fixed set of pipelined calls; what only this process sees
 * (queue wait and run durations from the events it reads, SSE clients, HTTP
 * requests) is kept here.
 */
#ifndef COMFYQ_SCHED_METRICS_H
#define COMFYQ_SCHED_METRICS_H

#include <stddef.h>

struct evhttp_request;
struct metrics;
struct sched;

struct metrics *metrics_new(struct sched *s, char *err, size_t errlen);
void		metrics_free(struct metrics *m);
/* GET /metrics: takes over req. */
void metrics_serve(struct metrics *m, struct evhttp_request *req);
/* One answered request: its route pattern, status and time taken. */
void metrics_http(
    struct metrics *m, const char *route, int status, double seconds);
/* The SSE module's clients: attached now, dropped since start because they
 * did not read. */
void metrics_sse(struct metrics *m, long long clients, long long dropped);
/* One entry of the events stream, as the SSE reader reads it: its type,
 * job, time (the stream id's ms) and attempt (0 when it has none). */
void metrics_event(struct metrics *m, const char *type, const char *jid,
    long long ms, long long attempt);

#endif
