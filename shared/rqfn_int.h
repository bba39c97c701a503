/*
 * What the reply decoders of rqfn.c share with the ones split off into
 * rqfn_hooks.c (webhook deliveries, uploads): the match of a reply against
 * a function's table row (see the top of rqfn.c). Not for callers of
 * rqfn.h.
 */
#ifndef COMFYQ_RQFN_INT_H
#define COMFYQ_RQFN_INT_H

#include "rqfn.h"

/* The i-th element of the reply r being decoded (already matched). */
#define E(i) (r->element[(i)])

/* Which of function id's replies r is: the index of its array form, or a
 * negative RQFN_IS_ code; -1 with err set for an error reply or a reply of
 * no shape the function gives. */
int rqfn_match(enum rqfn_fn id, const redisReply *r, char *err, size_t errlen);
/* A reply that is OK or STALE: *stale 1 for STALE. */
int rqfn_ok_stale(
    enum rqfn_fn id, const redisReply *r, int *stale, char *err, size_t errlen);

#endif
