/*
 * The error idiom of the workflow layer (STYLE.md G3): write the reason
 * into the caller's buffer and return -1. ERR_OUT needs `err` and
 * `errlen` in scope, as every function taking (char *err, size_t errlen)
 * has them. It returns at once and frees nothing: a function that has
 * allocated by then frees it before, or says in its contract who frees
 * what it leaves behind.
 */
#ifndef COMFYQ_ERROUT_H
#define COMFYQ_ERROUT_H

#include <stdio.h>

#define ERR_OUT(...)                                                           \
	do {                                                                   \
		snprintf(err, errlen, __VA_ARGS__);                            \
		return (-1);                                                   \
	} while (0)

#endif
