/*
 * An insertion-ordered map from strings to pointers, like a Python dict:
 * history, WebSocket clients, the output cache and validation results all
 * need lookup by id and iteration in the order entries were first added.
 * Chained buckets (FNV-1a) that double when the load passes 1, and a
 * doubly linked list for the order. Replacing a value keeps its position,
 * as assigning to an existing dict key does.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "xmalloc.h"

struct omap_ent {
	char		*key;
	void		*val;
	uint64_t	 hash;
	struct omap_ent *chain;
	struct omap_ent *prev, *next;
};

struct omap {
	struct omap_ent **b;
	size_t		  nb;
	size_t		  n;
	struct omap_ent	 *head, *tail;
};

static uint64_t
omap_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 0x100000001b3ULL;
	return (h);
}

struct omap *
omap_new(void)
{
	struct omap *m = xcalloc(1, sizeof *m);

	m->nb = 16;
	m->b = xcalloc(m->nb, sizeof *m->b);
	return (m);
}

void
omap_free(struct omap *m, void (*freefn)(void *))
{
	struct omap_ent *e, *next;

	if (m == NULL)
		return;
	for (e = m->head; e != NULL; e = next) {
		next = e->next;
		if (freefn != NULL)
			freefn(e->val);
		free(e->key);
		free(e);
	}
	free(m->b);
	free(m);
}

static struct omap_ent *
omap_find(const struct omap *m, const char *key, uint64_t h)
{
	struct omap_ent *e;

	for (e = m->b[h & (m->nb - 1)]; e != NULL; e = e->chain)
		if (e->hash == h && strcmp(e->key, key) == 0)
			return (e);
	return (NULL);
}

void *
omap_get(const struct omap *m, const char *key)
{
	struct omap_ent *e = omap_find(m, key, omap_hash(key));

	return (e != NULL ? e->val : NULL);
}

static void
omap_grow(struct omap *m)
{
	struct omap_ent *e;
	size_t		 i;

	free(m->b);
	m->nb *= 2;
	m->b = xcalloc(m->nb, sizeof *m->b);
	for (e = m->head; e != NULL; e = e->next) {
		i = e->hash & (m->nb - 1);
		e->chain = m->b[i];
		m->b[i] = e;
	}
}

/* Sets key to val; returns the value it replaced (NULL when new). */
void *
omap_put(struct omap *m, const char *key, void *val)
{
	uint64_t	 h = omap_hash(key);
	struct omap_ent *e = omap_find(m, key, h);
	void		*old;
	size_t		 i;

	if (e != NULL) {
		old = e->val;
		e->val = val;
		return (old);
	}
	if (m->n >= m->nb)
		omap_grow(m);
	e = xcalloc(1, sizeof *e);
	e->key = xstrdup(key);
	e->val = val;
	e->hash = h;
	i = h & (m->nb - 1);
	e->chain = m->b[i];
	m->b[i] = e;
	e->prev = m->tail;
	if (m->tail != NULL)
		m->tail->next = e;
	else
		m->head = e;
	m->tail = e;
	m->n++;
	return (NULL);
}

/* Removes key; returns its value (NULL when absent). */
void *
omap_del(struct omap *m, const char *key)
{
	uint64_t	  h = omap_hash(key);
	struct omap_ent **pp, *e;
	void		 *val;

	for (pp = &m->b[h & (m->nb - 1)]; (e = *pp) != NULL; pp = &e->chain)
		if (e->hash == h && strcmp(e->key, key) == 0)
			break;
	if (e == NULL)
		return (NULL);
	*pp = e->chain;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		m->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		m->tail = e->prev;
	val = e->val;
	free(e->key);
	free(e);
	m->n--;
	return (val);
}

size_t
omap_len(const struct omap *m)
{
	return (m->n);
}

struct omap_ent *
omap_first(const struct omap *m)
{
	return (m->head);
}

struct omap_ent *
omap_next(const struct omap_ent *e)
{
	return (e->next);
}

const char *
omap_key(const struct omap_ent *e)
{
	return (e->key);
}

void *
omap_val(const struct omap_ent *e)
{
	return (e->val);
}
