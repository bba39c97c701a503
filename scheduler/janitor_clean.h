/*
 * File cleanup on a GPU host: deletes files older than an age from
 * ComfyUI's output, temp and input folders, a bounded number of directory
 * entries per call, never following a symlink, never leaving a named
 * folder, never touching a file a running job needs (janitor_inuse.h).
 */
#ifndef COMFYQ_JANITOR_CLEAN_H
#define COMFYQ_JANITOR_CLEAN_H

#include <stddef.h>

struct inuse;

enum clean_kind {
	CLEAN_OUTPUT,
	CLEAN_TEMP,
	CLEAN_INPUT,
	CLEAN_NKINDS,
};

struct clean_stats {
	long long files;   /* files deleted */
	long long bytes;   /* their st_size, summed */
	long long dirs;	   /* empty directories removed */
	long long kept;	   /* old files kept: a running job needs them */
	long long skipped; /* symlinks, special files, other filesystems */
	long long errors;  /* entries that could not be read or removed */
};

struct clean;

const char   *clean_kind_name(enum clean_kind k);
int	      clean_check_root(const char *path, char *err, size_t errlen);
struct clean *clean_new(const char *spec, char *err, size_t errlen);
void	      clean_free(struct clean *c);
size_t	      clean_ndirs(const struct clean *c);
int	      clean_step(struct clean *c, const long long ages[CLEAN_NKINDS],
	      const struct inuse *u, long long budget, struct clean_stats *st);
int	      clean_walking(const struct clean *c);

#endif
