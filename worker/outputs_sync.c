/*
 * The output-fsync store (see outputs_sync.h). The loop thread owns a
 * batch until out_sync_start; from then the pool's thread owns it (its
 * work touches only the batch: descriptors and paths, no cJSON, no run),
 * and the done callback, back on the loop, hands the outcome to cb and
 * frees the batch. A batch freed before it started (the job failed on a
 * later output) closes and removes its temporary files.
 *
 * In the thread, file by file: fdatasync, close, rename into place; at
 * the first failure the files after it are closed and removed instead
 * (those renamed before it stay, as a job that fails halfway leaves its
 * earlier files for the janitor's cleanup). Then one fsync of the job's
 * folder, which makes the renames last.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outputs_sync.h"
#include "tpool.h"
#include "xmalloc.h"

struct out_sync {
	char		dir[OUT_PATH_MAX]; /* <output-dir>/<job> */
	struct out_tmp *f;		   /* n of them */
	int		n;
	out_sync_cb	cb;
	void	       *arg;
	char		err[OUT_PATH_MAX + 128];
	int		failed;
};

struct out_sync *
out_sync_new(const char *dir, const char *jid)
{
	struct out_sync *s = xcalloc(1, sizeof *s);

	snprintf(s->dir, sizeof s->dir, "%s/%s", dir, jid);
	return (s);
}

/*
 * Takes t's open, validated temporary file into the batch (t is left
 * empty) and adds the place it will have to rec ("path").
 */
void
out_sync_add(struct out_sync *s, struct out_tmp *t, cJSON *rec)
{
	s->f = xrealloc(s->f, (size_t)(s->n + 1) * sizeof *s->f);
	s->f[s->n++] = *t;
	cJSON_AddStringToObject(rec, "path", t->path);
	output_tmp_init(t);
}

int
out_sync_count(const struct out_sync *s)
{
	return (s->n);
}

static void
out_sync_fail(struct out_sync *s, const char *path, const char *what)
{
	if (s->failed)
		return;
	s->failed = 1;
	snprintf(s->err, sizeof s->err, "%s: %s%s%s", path, what,
	    *what != '\0' ? ": " : "", strerror(errno));
}

/* On a pool thread. */
static void
out_sync_work(void *arg)
{
	struct out_sync *s = arg;
	struct out_tmp	*t;
	int		 i, fd, rc;

	for (i = 0; i < s->n; i++) {
		t = &s->f[i];
		if (s->failed) {
			output_tmp_discard(t);
			continue;
		}
		if (fdatasync(t->fd) == -1) {
			out_sync_fail(s, t->tmp, "fdatasync");
			output_tmp_discard(t);
			continue;
		}
		rc = close(t->fd);
		t->fd = -1;
		if (rc == -1 || rename(t->tmp, t->path) == -1) {
			out_sync_fail(s, rc == -1 ? t->tmp : t->path,
			    rc == -1 ? "close" : "rename");
			unlink(t->tmp);
		}
	}
	if (s->failed || s->n == 0)
		return;
	if ((fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		out_sync_fail(s, s->dir, "");
		return;
	}
	if (fsync(fd) == -1)
		out_sync_fail(s, s->dir, "fsync");
	close(fd);
}

/* On the loop thread. */
static void
out_sync_done(void *arg)
{
	struct out_sync *s = arg;

	s->cb(s->arg, s->failed ? s->err : NULL);
	out_sync_free(s);
}

/*
 * Flushes and renames the batch on p, then calls cb(arg, err) on the
 * loop and frees the batch. Returns 0, or -1 when p refused the work
 * (it is being freed): then the batch is still the caller's.
 */
int
out_sync_start(struct out_sync *s, struct tpool *p, out_sync_cb cb, void *arg)
{
	s->cb = cb;
	s->arg = arg;
	return (tpool_submit(p, out_sync_work, out_sync_done, s));
}

/* Frees the batch; files not renamed yet are closed and removed. */
void
out_sync_free(struct out_sync *s)
{
	int i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n; i++)
		output_tmp_discard(&s->f[i]);
	free(s->f);
	free(s);
}
