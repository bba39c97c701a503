/*
 * The in-use set (see janitor_inuse.h): two sorted arrays of strings, the
 * job ids and the "kind/path" names, searched with bsearch. It is rebuilt
 * from scratch for each cleanup step (a few thousand entries at most: one
 * per active job in the queue), so nothing here is ever stale by more than
 * one janitor tick.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "janitor_inuse.h"
#include "rqfn.h"
#include "xmalloc.h"

struct strv {
	char **v;
	size_t n, cap;
};

struct inuse {
	struct strv jobs;
	struct strv files;
};

static void
strv_add(struct strv *s, const char *str)
{
	if (s->n == s->cap) {
		s->cap = s->cap == 0 ? 64 : s->cap * 2;
		s->v = xrealloc(s->v, s->cap * sizeof *s->v);
	}
	s->v[s->n++] = xstrdup(str);
}

static void
strv_clear(struct strv *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i]);
	s->n = 0;
}

static int
strv_cmp(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

static int
strv_has(const struct strv *s, const char *str)
{
	return (s->n > 0 &&
	    bsearch(&str, s->v, s->n, sizeof *s->v, strv_cmp) != NULL);
}

struct inuse *
inuse_new(void)
{
	return (xcalloc(1, sizeof(struct inuse)));
}

void
inuse_free(struct inuse *u)
{
	if (u == NULL)
		return;
	inuse_clear(u);
	free(u->jobs.v);
	free(u->files.v);
	free(u);
}

void
inuse_clear(struct inuse *u)
{
	strv_clear(&u->jobs);
	strv_clear(&u->files);
}

void
inuse_add_job(struct inuse *u, const char *jid)
{
	strv_add(&u->jobs, jid);
}

/* Adds the names of a job's `files` field (a JSON array of strings). */
int
inuse_add_files(struct inuse *u, const char *json, char *err, size_t errlen)
{
	cJSON *a, *e;

	if (*json == '\0')
		return (0);
	if ((a = cJSON_Parse(json)) == NULL || !cJSON_IsArray(a)) {
		snprintf(err, errlen, "files: not a JSON array");
		cJSON_Delete(a);
		return (-1);
	}
	cJSON_ArrayForEach(e, a) {
		if (cJSON_IsString(e))
			strv_add(&u->files, e->valuestring);
	}
	cJSON_Delete(a);
	return (0);
}

/*
 * Loads a comfyq_active_files reply: { truncated, jid, files, ... }. A
 * truncated list cannot prove a file unused, so it is an error.
 */
int
inuse_load(struct inuse *u, const redisReply *r, char *err, size_t errlen)
{
	struct rqfn_active_files a;
	const char		*jid, *files;
	size_t			 i;

	inuse_clear(u);
	if (rqfn_active_files_reply(r, &a, err, errlen) == -1)
		return (-1);
	if (a.truncated) {
		snprintf(err, errlen,
		    "active_files: more active jobs than the list holds");
		return (-1);
	}
	for (i = 0; i < a.njobs; i++) {
		rqfn_active_file(&a, i, &jid, &files);
		inuse_add_job(u, jid);
		/* A bad files field still protects the job's own folder. */
		(void)inuse_add_files(u, files, err, errlen);
	}
	inuse_seal(u);
	return (0);
}

/* Sorts the set for lookups; call after the last add. */
void
inuse_seal(struct inuse *u)
{
	if (u->jobs.n > 1)
		qsort(u->jobs.v, u->jobs.n, sizeof *u->jobs.v, strv_cmp);
	if (u->files.n > 1)
		qsort(u->files.v, u->files.n, sizeof *u->files.v, strv_cmp);
}

size_t
inuse_jobs(const struct inuse *u)
{
	return (u->jobs.n);
}

/*
 * Whether rel (a path relative to a cleaned folder of kind, such as
 * "comfyq/<jid>/x.png" or "comfyq/<jid>") belongs to a running job.
 */
int
inuse_has(const struct inuse *u, const char *kind, const char *rel)
{
	const size_t dirlen = sizeof INUSE_DIR - 1;
	char	     buf[4096];
	const char  *jid, *slash;
	int	     n;

	if (strncmp(rel, INUSE_DIR "/", dirlen + 1) == 0) {
		jid = rel + dirlen + 1;
		slash = strchr(jid, '/');
		n = snprintf(buf, sizeof buf, "%.*s",
		    (int)(slash ? (size_t)(slash - jid) : strlen(jid)), jid);
		if (n > 0 && (size_t)n < sizeof buf && strv_has(&u->jobs, buf))
			return (1);
	}
	n = snprintf(buf, sizeof buf, "%s/%s", kind, rel);
	return (n > 0 && (size_t)n < sizeof buf && strv_has(&u->files, buf));
}
