/*
 * The files that jobs running now still need, so the file cleanup keeps
 * them: every file under comfyq/<jid>/ of an active job, in any cleaned
 * folder, and the paths the job recorded with comfyq_job_files
 * ("<output|temp|input>/<relative path>"). Rebuilt from the
 * comfyq_active_files reply before every cleanup step.
 */
#ifndef COMFYQ_JANITOR_INUSE_H
#define COMFYQ_JANITOR_INUSE_H

#include <hiredis/hiredis.h>

#define INUSE_DIR "comfyq" /* jobs keep their files under comfyq/<jid>/ */

struct inuse;

struct inuse *inuse_new(void);
void	      inuse_free(struct inuse *u);
void	      inuse_clear(struct inuse *u);
void	      inuse_add_job(struct inuse *u, const char *jid);
int	      inuse_add_files(
	      struct inuse *u, const char *json, char *err, size_t errlen);
int  inuse_load(struct inuse *u, const redisReply *r, char *err, size_t errlen);
void inuse_seal(struct inuse *u);
size_t inuse_jobs(const struct inuse *u);
int    inuse_has(const struct inuse *u, const char *kind, const char *rel);

#endif
