/*
 * Allocation that dies on failure, for small fixed-size objects. A process
 * that cannot get a few hundred bytes cannot do anything useful, and a
 * supervisor restarts it. Request-sized buffers (images, uploads, bodies)
 * use plain malloc and fail the request instead.
 */
#ifndef COMFYQ_XMALLOC_H
#define COMFYQ_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *old, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
