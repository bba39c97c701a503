/*
 * Events stream entries as SSE frames (see sched_sse_ev.h). The data is one
 * line of JSON (cJSON escapes newlines): the entry's fields, with meta and
 * outputs as the JSON they hold, refund a boolean, counts and times
 * numbers, the rest strings as the producer contract gives them; a progress
 * event also gets `percent` (value * 100 / max, whole).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sched_sse_ev.h"
#include "util.h"
#include "xmalloc.h"

int
sse_id_parse(const char *s, struct sse_id *id)
{
	char *end;

	if (*s < '0' || *s > '9')
		return (-1);
	id->ms = strtoull(s, &end, 10);
	if (*end != '-' || end[1] < '0' || end[1] > '9')
		return (-1);
	id->seq = strtoull(end + 1, &end, 10);
	return (*end == '\0' ? 0 : -1);
}

int
sse_id_cmp(const struct sse_id *a, const struct sse_id *b)
{
	if (a->ms != b->ms)
		return (a->ms < b->ms ? -1 : 1);
	if (a->seq != b->seq)
		return (a->seq < b->seq ? -1 : 1);
	return (0);
}

int
sse_is_terminal(const char *type)
{
	return (strcmp(type, "succeeded") == 0 || strcmp(type, "failed") == 0 ||
	    strcmp(type, "canceled") == 0);
}

static int
sse_is_numeric(const char *k)
{
	static const char *const names[] = { "attempt", "busy", "due_ms",
		"fence", "max", "position", "queued", "reclaims", "total",
		"value", NULL };
	size_t			 i;

	for (i = 0; names[i] != NULL; i++)
		if (strcmp(k, names[i]) == 0)
			return (1);
	return (0);
}

/* One field of an event as JSON: meta and outputs are JSON text, refund a
 * boolean, counts and times numbers; the rest strings. */
static cJSON *
sse_field_json(const char *k, const char *v)
{
	cJSON	 *j = NULL;
	long long n;

	if (strcmp(k, "meta") == 0 || strcmp(k, "outputs") == 0)
		j = cJSON_Parse(v);
	else if (strcmp(k, "refund") == 0)
		j = cJSON_CreateBool(strcmp(v, "true") == 0);
	else if (sse_is_numeric(k) && parse_ll(v, 0, 1LL << 53, &n) == 0)
		j = cJSON_CreateNumber((double)n);
	return (j != NULL ? j : cJSON_CreateString(v));
}

struct sse_ev *
sse_ev_new(const char *idstr, const char *const *kv, size_t nkv)
{
	const char    *type = NULL, *jid = NULL, *tenant = "";
	long long      value = -1, max = 0, attempt = 0;
	struct sse_ev *ev;
	struct sse_id  id;
	cJSON	      *o;
	char	      *data, *p;
	size_t	       i, dlen, jlen, tlen, tylen;

	if (sse_id_parse(idstr, &id) == -1)
		return (NULL);
	o = cJSON_CreateObject();
	for (i = 0; i + 1 < nkv; i += 2) {
		const char *k = kv[i], *v = kv[i + 1];

		if (strcmp(k, "type") == 0)
			type = v;
		else if (strcmp(k, "job") == 0)
			jid = v;
		else if (strcmp(k, "tenant") == 0)
			tenant = v;
		else if (strcmp(k, "value") == 0)
			parse_ll(v, 0, 1LL << 53, &value);
		else if (strcmp(k, "max") == 0)
			parse_ll(v, 0, 1LL << 53, &max);
		else if (strcmp(k, "attempt") == 0)
			parse_ll(v, 0, 1LL << 53, &attempt);
		cJSON_AddItemToObject(o, k, sse_field_json(k, v));
	}
	if (type == NULL || jid == NULL) {
		cJSON_Delete(o);
		return (NULL);
	}
	if (strcmp(type, "progress") == 0 && value >= 0 && max > 0)
		cJSON_AddNumberToObject(
		    o, "percent", (double)(value * 100 / max));
	data = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	dlen = strlen(data);
	tylen = strlen(type);
	jlen = strlen(jid);
	tlen = strlen(tenant);
	ev = xmalloc(sizeof *ev + strlen(idstr) + 2 * tylen + dlen + 24 + jlen +
	    tlen + 3);
	ev->id = id;
	ev->attempt = attempt;
	ev->terminal = sse_is_terminal(type);
	ev->len = (size_t)sprintf(
	    ev->mem, "id: %s\nevent: %s\ndata: %s\n\n", idstr, type, data);
	p = ev->mem + ev->len + 1;
	ev->type = memcpy(p, type, tylen + 1);
	ev->jid = memcpy(p + tylen + 1, jid, jlen + 1);
	ev->tenant = memcpy(p + tylen + 1 + jlen + 1, tenant, tlen + 1);
	cJSON_free(data);
	return (ev);
}

struct sse_ev *
sse_ev_from_entry(const redisReply *e)
{
	const redisReply *f;
	struct sse_ev	 *ev;
	const char	**kv;
	size_t		  i;

	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING ||
	    e->element[1]->type != REDIS_REPLY_ARRAY)
		return (NULL);
	f = e->element[1];
	kv = xcalloc(f->elements + 1, sizeof *kv);
	for (i = 0; i < f->elements; i++) {
		if (f->element[i]->type != REDIS_REPLY_STRING) {
			free(kv);
			return (NULL);
		}
		kv[i] = f->element[i]->str;
	}
	ev = sse_ev_new(e->element[0]->str, kv, f->elements);
	free(kv);
	return (ev);
}
