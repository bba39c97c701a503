/*
 * The stable error codes a job can end with (docs/design.md §5), and
 * whether the worker retries each. Every code refunds: a job that did not deliver is
 * never charged. lua/lib.lua holds the same list (ERROR_CODES).
 */
#ifndef COMFYQ_ERRCODE_H
#define COMFYQ_ERRCODE_H

enum errcode {
	EC_INVALID_INPUT,
	EC_UNKNOWN_WORKFLOW,
	EC_WORKFLOW_ERROR,
	EC_BACKEND_UNAVAILABLE,
	EC_TIMEOUT,
	EC_STALLED,
	EC_OOM,
	EC_GPU_FAULT,
	EC_NO_FACE,
	EC_OUTPUT_INVALID,
	EC_CANCELED,
	EC_WORKER_LOST,
	EC_INTERNAL,
	EC_COUNT
};

const char *errcode_name(enum errcode);
int	    errcode_retryable(enum errcode);
int	    errcode_parse(const char *, enum errcode *);

#endif
