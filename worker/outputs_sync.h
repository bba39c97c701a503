/*
 * One job's output files on their way to disk with output-fsync on: each
 * was written to its hidden temporary name in <output-dir>/<job>/ and
 * validated there on the loop (outputs.c); out_sync_start then has a
 * thread of a pool flush each file's data (fdatasync), rename it into
 * place, and flush the job's folder once (fsync), so the loop thread never
 * waits on the disk. cb runs on the loop thread when all is done, and the
 * job may be reported succeeded only then: what it names is on disk.
 */
#ifndef COMFYQ_OUTPUTS_SYNC_H
#define COMFYQ_OUTPUTS_SYNC_H

#include <cjson/cJSON.h>

#include "outputs.h"

#define OUT_SYNC_THREADS 2 /* the worker's pool for flushing outputs */

struct out_sync;
struct tpool;

/* err: NULL when every file is flushed and in place and the folder is
 * flushed; else the first failure ("<path>: fdatasync: <reason>"). */
typedef void (*out_sync_cb)(void *arg, const char *err);

struct out_sync *out_sync_new(const char *dir, const char *jid);
void out_sync_add(struct out_sync *s, struct out_tmp *t, cJSON *rec);
int  out_sync_count(const struct out_sync *s);
int  out_sync_start(
     struct out_sync *s, struct tpool *p, out_sync_cb cb, void *arg);
void out_sync_free(struct out_sync *s);

#endif
