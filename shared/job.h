/*
 * The job spec model (docs/design.md §4, README "A job"): a submitted
 * JSON document, parsed and checked against the envelope rules that
 * lua/spec.lua also enforces, so a producer hears of a bad field before
 * anything reaches Redis and the enqueue function refuses the same spec
 * with the same words. The parsed tree owns every pointer in struct
 * job_spec.
 */
#ifndef COMFYQ_JOB_H
#define COMFYQ_JOB_H

#include <stddef.h>

#include <cjson/cJSON.h>

struct job_limits {
	size_t max_spec_bytes; /* 1 MiB */
	size_t max_prompt_len; /* params.prompt, negative_prompt */
	size_t max_param_len;  /* any other string param */
};

extern const struct job_limits job_limits_default;

struct job_spec {
	cJSON	    *root;
	const char  *workflow;	  /* or NULL */
	const cJSON *graph;	  /* or NULL */
	const cJSON *params;	  /* object or NULL */
	const cJSON *loras;	  /* array or NULL */
	const cJSON *controlnets; /* array or NULL */
	const cJSON *inputs;	  /* object or NULL */
	const cJSON *meta;	  /* object or NULL */
	const char  *tenant;
	const char  *priority; /* high, normal (default), low */
	const char  *idempotency_key;
	const char  *webhook;
	int	     webhook_progress; /* 1: progress webhooks too */
	long long    timeout_s;	       /* 0: the worker's default */
	long long    max_attempts;     /* default 3 */
	long long    run_at;	       /* ms since the epoch, 0: now */
	long long    vram_mb;	       /* 0: unknown */
};

int job_spec_parse(struct job_spec *js, const char *text, size_t len,
    const struct job_limits *lim, char *err, size_t errlen);
int job_spec_check(struct job_spec *js, const struct job_limits *lim, char *err,
    size_t errlen);
void job_spec_free(struct job_spec *js);

#endif
