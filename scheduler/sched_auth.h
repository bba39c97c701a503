/*
 * Bearer tokens (the tokens setting): each has a name, the tenant prefix
 * it may submit and read for (`*`: any) and a secret. A request's secret
 * is compared with every token's in constant time, so the time taken says
 * nothing about how much of a secret matched, nor which token did.
 */
#ifndef COMFYQ_SCHED_AUTH_H
#define COMFYQ_SCHED_AUTH_H

#include <stddef.h>

struct sched_auth;

/* The caller's token after auth (NULL when auth is off). */
struct sched_token {
	const char *name;
	const char *tenant_prefix;
};

/* Parses NAME:PREFIX:SECRET,...; "" gives a table with no tokens (open). */
struct sched_auth *auth_new(const char *spec, char *err, size_t errlen);
void		   auth_free(struct sched_auth *a);
size_t		   auth_count(const struct sched_auth *a);
/* The token whose secret is the header's Bearer value, or NULL. */
const struct sched_token *auth_check(
    const struct sched_auth *a, const char *authorization);
/* Whether tok may act for tenant (tok NULL: auth is off, any tenant). */
int auth_tenant_ok(const struct sched_token *tok, const char *tenant);

#endif
