/*
 * Bearer tokens (see sched_auth.h). The table is built whole from the
 * setting and replaced whole on SIGHUP (sched_main.c); a request holds a
 * token only while its handler runs, and the asynchronous handlers copy
 * the tenant prefix they need.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errout.h"
#include "sched_auth.h"
#include "xmalloc.h"

#define AUTH_MAX   256
#define SECRET_MIN 16
#define SECRET_MAX 256

struct auth_entry {
	struct sched_token tok;
	char		  *name, *prefix, *secret;
	size_t		   secret_len;
};

struct sched_auth {
	struct auth_entry *e;
	size_t		   n;
};

void
auth_free(struct sched_auth *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->n; i++) {
		free(a->e[i].name);
		free(a->e[i].prefix);
		explicit_bzero(a->e[i].secret, a->e[i].secret_len);
		free(a->e[i].secret);
	}
	free(a->e);
	free(a);
}

/* One NAME:PREFIX:SECRET, len bytes at s. */
static int
auth_entry_parse(
    struct auth_entry *e, const char *s, size_t len, char *err, size_t errlen)
{
	const char *c1, *c2, *end = s + len;
	size_t	    i;

	if ((c1 = memchr(s, ':', len)) == NULL || c1 == s)
		ERR_OUT("tokens: an entry is not NAME:TENANT_PREFIX:SECRET");
	for (c2 = end; c2 > c1 && c2[-1] != ':'; c2--)
		;
	if (c2 - 1 == c1)
		ERR_OUT(
		    "tokens: %.*s: no TENANT_PREFIX:SECRET", (int)(c1 - s), s);
	if ((size_t)(end - c2) < SECRET_MIN || (size_t)(end - c2) > SECRET_MAX)
		ERR_OUT("tokens: %.*s: the secret must be %d..%d bytes",
		    (int)(c1 - s), s, SECRET_MIN, SECRET_MAX);
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] == 0x7f)
			ERR_OUT("tokens: %.*s: spaces and control characters "
				"are not allowed",
			    (int)(c1 - s), s);
	e->name = xstrndup(s, (size_t)(c1 - s));
	e->prefix = xstrndup(c1 + 1, (size_t)(c2 - 1 - (c1 + 1)));
	e->secret_len = (size_t)(end - c2);
	e->secret = xstrndup(c2, e->secret_len);
	e->tok.name = e->name;
	e->tok.tenant_prefix = e->prefix;
	return (0);
}

struct sched_auth *
auth_new(const char *spec, char *err, size_t errlen)
{
	struct sched_auth *a = xcalloc(1, sizeof *a);
	const char	  *p = spec, *comma;
	size_t		   len, i;

	while (*p != '\0') {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (a->n == AUTH_MAX) {
			snprintf(err, errlen, "tokens: over %d", AUTH_MAX);
			goto fail;
		}
		a->e = xrealloc(a->e, (a->n + 1) * sizeof *a->e);
		memset(&a->e[a->n], 0, sizeof a->e[a->n]);
		if (auth_entry_parse(&a->e[a->n], p, len, err, errlen) == -1)
			goto fail;
		for (i = 0; i < a->n; i++)
			if (strcmp(a->e[i].name, a->e[a->n].name) == 0) {
				snprintf(err, errlen,
				    "tokens: the name %s is given twice",
				    a->e[i].name);
				a->n++;
				goto fail;
			}
		a->n++;
		p += len + (comma != NULL);
	}
	return (a);
fail:
	auth_free(a);
	return (NULL);
}

size_t
auth_count(const struct sched_auth *a)
{
	return (a->n);
}

/* 1 when the len bytes at s equal the secret; time depends only on the
 * secret's length, never on where they differ. */
static int
auth_equal(const char *s, size_t len, const struct auth_entry *e)
{
	unsigned char d = len != e->secret_len;
	size_t	      i;

	for (i = 0; i < e->secret_len; i++)
		d |= (unsigned char)(e->secret[i] ^ (i < len ? s[i] : 0));
	return (d == 0);
}

const struct sched_token *
auth_check(const struct sched_auth *a, const char *authorization)
{
	const struct sched_token *found = NULL;
	const char		 *s;
	size_t			  i, len;

	if (authorization == NULL ||
	    strncasecmp(authorization, "Bearer ", 7) != 0)
		return (NULL);
	s = authorization + 7;
	while (*s == ' ')
		s++;
	len = strlen(s);
	/* Every token is compared, a match or not. */
	for (i = 0; i < a->n; i++)
		if (auth_equal(s, len, &a->e[i]) && found == NULL)
			found = &a->e[i].tok;
	return (found);
}

int
auth_tenant_ok(const struct sched_token *tok, const char *tenant)
{
	if (tok == NULL || strcmp(tok->tenant_prefix, "*") == 0)
		return (1);
	return (tenant != NULL &&
	    strncmp(tenant, tok->tenant_prefix, strlen(tok->tenant_prefix)) ==
		0);
}
