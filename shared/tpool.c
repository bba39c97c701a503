/*
 * Thread pool (see tpool.h). Two queues under one mutex: jobs waiting for
 * a thread, and jobs whose work is done and whose done callback is due.
 * A pool thread that finishes a job moves it to the done queue and writes
 * a byte to a pipe; the read end is a persistent libevent event on the
 * loop, whose callback drains the pipe and runs every due callback, with
 * the lock released. So the loop wakes once per burst, and libevent needs
 * no thread support of its own.
 *
 * tpool_free() is the one teardown, called on the loop thread: it lets
 * the threads finish every job already submitted (a download may take its
 * whole timeout), joins them, runs the remaining done callbacks there and
 * then, and frees the pool. Nothing is dropped, so callers free their
 * arguments in done as always.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "tpool.h"
#include "xmalloc.h"

struct tpool_job {
	void (*work)(void *);
	void (*done)(void *);
	void		 *arg;
	struct tpool_job *next;
};

struct tpool_queue {
	struct tpool_job *head, *tail;
};

struct tpool {
	pthread_mutex_t	   lock;
	pthread_cond_t	   wake;
	struct tpool_queue todo, done;
	int		   stopping, pending, nthreads;
	pthread_t	   threads[TPOOL_THREADS_MAX];
	int		   pipe[2];
	struct event	  *ev;
};

static void
tpool_push(struct tpool_queue *q, struct tpool_job *j)
{
	j->next = NULL;
	if (q->tail != NULL)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

static struct tpool_job *
tpool_pop(struct tpool_queue *q)
{
	struct tpool_job *j = q->head;

	if (j != NULL && (q->head = j->next) == NULL)
		q->tail = NULL;
	return (j);
}

static void *
tpool_main(void *arg)
{
	struct tpool	 *p = arg;
	struct tpool_job *j;
	char		  b = 1;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->todo.head == NULL && !p->stopping)
			pthread_cond_wait(&p->wake, &p->lock);
		if ((j = tpool_pop(&p->todo)) == NULL)
			break; /* stopping, and nothing left */
		pthread_mutex_unlock(&p->lock);
		j->work(j->arg);
		pthread_mutex_lock(&p->lock);
		tpool_push(&p->done, j);
		while (write(p->pipe[1], &b, 1) == -1 && errno == EINTR)
			;
	}
	pthread_mutex_unlock(&p->lock);
	return (NULL);
}

/* Runs every due done callback, on the calling (loop) thread. */
static void
tpool_run_done(struct tpool *p)
{
	struct tpool_queue q;
	struct tpool_job  *j;

	pthread_mutex_lock(&p->lock);
	q = p->done;
	p->done.head = p->done.tail = NULL;
	pthread_mutex_unlock(&p->lock);
	while ((j = tpool_pop(&q)) != NULL) {
		pthread_mutex_lock(&p->lock);
		p->pending--;
		pthread_mutex_unlock(&p->lock);
		j->done(j->arg);
		free(j);
	}
}

static void
tpool_wakeup(evutil_socket_t fd, short what, void *arg)
{
	char buf[256];

	(void)what;
	while (read(fd, buf, sizeof buf) > 0)
		;
	tpool_run_done(arg);
}

/* A pool of nthreads (1..TPOOL_THREADS_MAX) threads; dies on failure. */
struct tpool *
tpool_new(struct event_base *base, int nthreads)
{
	struct tpool *p = xcalloc(1, sizeof *p);
	int	      i, rc;

	if (nthreads < 1 || nthreads > TPOOL_THREADS_MAX)
		fatalx("tpool: %d threads not in 1..%d", nthreads,
		    TPOOL_THREADS_MAX);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	if (pipe(p->pipe) == -1)
		fatal("tpool: pipe");
	for (i = 0; i < 2; i++)
		if (fcntl(p->pipe[i], F_SETFL, O_NONBLOCK) == -1 ||
		    fcntl(p->pipe[i], F_SETFD, FD_CLOEXEC) == -1)
			fatal("tpool: fcntl");
	p->ev =
	    event_new(base, p->pipe[0], EV_READ | EV_PERSIST, tpool_wakeup, p);
	if (p->ev == NULL || event_add(p->ev, NULL) == -1)
		fatalx("tpool: cannot add the wake-up event");
	for (i = 0; i < nthreads; i++) {
		if ((rc = pthread_create(
			 &p->threads[i], NULL, tpool_main, p)) != 0)
			fatalx("tpool: pthread_create: %s", strerror(rc));
		p->nthreads++;
	}
	return (p);
}

/* Queues work; returns 0, or -1 while the pool is being freed. */
int
tpool_submit(
    struct tpool *p, void (*work)(void *), void (*done)(void *), void *arg)
{
	struct tpool_job *j = xmalloc(sizeof *j);

	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		pthread_mutex_unlock(&p->lock);
		free(j);
		return (-1);
	}
	tpool_push(&p->todo, j);
	p->pending++;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	return (0);
}

/* Jobs submitted whose done callback has not run yet. */
int
tpool_pending(const struct tpool *p)
{
	int n;

	pthread_mutex_lock((pthread_mutex_t *)&p->lock);
	n = p->pending;
	pthread_mutex_unlock((pthread_mutex_t *)&p->lock);
	return (n);
}

void
tpool_free(struct tpool *p)
{
	int i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	tpool_run_done(p);
	event_free(p->ev);
	close(p->pipe[0]);
	close(p->pipe[1]);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
