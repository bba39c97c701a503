/*
 * Allocation that dies on failure, for small fixed-size objects. A process
 * that cannot get a few hundred bytes cannot do anything useful, and a
 * supervisor restarts it. Request-sized buffers (images, uploads, bodies)
 * use plain malloc and fail the request instead.
 */
#ifndef COMFYQ_XMALLOC_H
#define COMFYQ_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xrealloc(void *, size_t);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);
char *xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

#endif
