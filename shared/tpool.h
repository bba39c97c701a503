/*
 * A thread pool for blocking work (URL downloads, image decoding, Canny)
 * whose completions run on the libevent loop thread, so the loop never
 * blocks and completion code needs no locks. work(arg) runs on a pool
 * thread; done(arg) then runs on the loop thread, from the event base
 * the pool was made with. Jobs start in the order submitted.
 */
#ifndef COMFYQ_TPOOL_H
#define COMFYQ_TPOOL_H

#include <event2/event.h>

#define TPOOL_THREADS_MAX 64

struct tpool;

struct tpool *tpool_new(struct event_base *base, int nthreads);
int	      tpool_submit(
	      struct tpool *p, void (*work)(void *), void (*done)(void *), void *arg);
int  tpool_pending(const struct tpool *p);
void tpool_free(struct tpool *p);

#endif
