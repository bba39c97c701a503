/*
 * One entry of the events stream as an SSE client gets it: its stream id,
 * the job and tenant its filters look at, and the frame
 * `id: <stream id>\nevent: <type>\ndata: <JSON object of the fields>\n\n`.
 * Built once per entry and written as is to every client it matches.
 */
#ifndef COMFYQ_SCHED_SSE_EV_H
#define COMFYQ_SCHED_SSE_EV_H

#include <stddef.h>

#include <hiredis/hiredis.h>

struct sse_id {
	unsigned long long ms, seq;
};

struct sse_ev {
	struct sse_id id;
	const char   *type; /* type, jid, tenant point into mem */
	const char   *jid;
	const char   *tenant;
	long long     attempt;	/* 0 when it has none */
	int	      terminal; /* succeeded, failed, canceled */
	size_t	      len;	/* of the frame, at mem */
	char	      mem[];
};

/* "<ms>-<seq>" as XADD makes it. */
int sse_id_parse(const char *s, struct sse_id *id);
int sse_id_cmp(const struct sse_id *a, const struct sse_id *b);
int sse_is_terminal(const char *type);

/* An event from its fields (kv: key, value, ...), or NULL when the id is
 * not a stream id or type or job is missing. Free with free(). */
struct sse_ev *sse_ev_new(const char *idstr, const char *const *kv, size_t nkv);
/* The event of a stream entry [id, [field, value, ...]], or NULL. */
struct sse_ev *sse_ev_from_entry(const redisReply *entry);

#endif
