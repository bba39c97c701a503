/*
 * The graph a job sends to ComfyUI, and what its outputs must look like.
 */
#ifndef COMFYQ_RENDER_H
#define COMFYQ_RENDER_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "errcode.h"
#include "job.h"
#include "outputs.h"

cJSON *render_job(const struct job_spec *, const char *, int,
    struct out_expect *, enum errcode *, char *, size_t);
int    render_prefix(cJSON *, const char *);

#endif
