/*
 * Redis addresses (see rq_url.h): the server's URL, parsed into its parts,
 * and a queue's key prefix. Nothing here talks to Redis; rq.c connects with
 * what this parses.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rq_url.h"
#include "util.h"
#include "xmalloc.h"

/* Decodes %XX escapes of s[0..len) into a new string. */
static char *
rq_url_unescape(const char *s, size_t len)
{
	char  *out = xmalloc(len + 1), hex[3] = { 0 };
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len &&
		    isxdigit((unsigned char)s[i + 1]) &&
		    isxdigit((unsigned char)s[i + 2])) {
			hex[0] = s[i + 1];
			hex[1] = s[i + 2];
			out[o++] = (char)strtol(hex, NULL, 16);
			i += 2;
		} else
			out[o++] = s[i];
	}
	out[o] = '\0';
	return (out);
}

/* Parses the query of a unix:// URL: db, password, user. */
static int
rq_url_query(const char *q, struct rq_url *u, char *err, size_t errlen)
{
	const char *p = q, *amp, *eq;
	long long   db;
	char	   *v;

	while (*p != '\0') {
		amp = strchr(p, '&');
		if (amp == NULL)
			amp = p + strlen(p);
		if ((eq = memchr(p, '=', (size_t)(amp - p))) == NULL) {
			snprintf(err, errlen, "redis URL: bad query '%s'", q);
			return (-1);
		}
		v = rq_url_unescape(eq + 1, (size_t)(amp - eq - 1));
		if ((size_t)(eq - p) == 2 && strncmp(p, "db", 2) == 0) {
			if (parse_ll(v, 0, 1000000, &db) == -1) {
				snprintf(
				    err, errlen, "redis URL: bad db '%s'", v);
				free(v);
				return (-1);
			}
			u->db = (int)db;
			free(v);
		} else if ((size_t)(eq - p) == 8 &&
		    strncmp(p, "password", 8) == 0) {
			free(u->password);
			u->password = v;
		} else if ((size_t)(eq - p) == 4 &&
		    strncmp(p, "user", 4) == 0) {
			free(u->user);
			u->user = v;
		} else {
			snprintf(err, errlen,
			    "redis URL: unknown parameter '%.*s'",
			    (int)(eq - p), p);
			free(v);
			return (-1);
		}
		p = *amp == '&' ? amp + 1 : amp;
	}
	return (0);
}

/*
 * Parses redis://[[user][:password]@]host[:port][/db], the same with
 * rediss:// (TLS: u->tls set), or unix:///path[?db=N&password=P&user=U].
 * Returns 0, or -1 with err set.
 */
int
rq_url_parse(const char *url, struct rq_url *u, char *err, size_t errlen)
{
	const char *p, *at, *hostend, *slash, *colon, *q;
	long long   n;
	char	   *tmp;

	memset(u, 0, sizeof *u);
	u->port = 6379;
	if (strncmp(url, "unix://", 7) == 0) {
		p = url + 7;
		q = strchr(p, '?');
		if (*p != '/') {
			snprintf(err, errlen,
			    "redis URL: unix:// needs an absolute path");
			return (-1);
		}
		u->path = xstrndup(p, q ? (size_t)(q - p) : strlen(p));
		if (q != NULL && rq_url_query(q + 1, u, err, errlen) == -1)
			goto fail;
		return (0);
	}
	if (strncmp(url, "rediss://", 9) == 0) {
		u->tls = 1;
		p = url + 9;
	} else if (strncmp(url, "redis://", 8) == 0)
		p = url + 8;
	else {
		snprintf(err, errlen,
		    "redis URL: '%s' does not start with redis://, rediss:// or unix://",
		    url);
		return (-1);
	}
	slash = strchr(p, '/');
	hostend = slash ? slash : p + strlen(p);
	at = memchr(p, '@', (size_t)(hostend - p));
	if (at != NULL) {
		colon = memchr(p, ':', (size_t)(at - p));
		if (colon != NULL) {
			if (colon > p)
				u->user =
				    rq_url_unescape(p, (size_t)(colon - p));
			u->password = rq_url_unescape(
			    colon + 1, (size_t)(at - colon - 1));
		} else if (at > p)
			u->password = rq_url_unescape(p, (size_t)(at - p));
		p = at + 1;
	}
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(hostend - p));

		if (rb == NULL) {
			snprintf(err, errlen, "redis URL: unclosed '['");
			goto fail;
		}
		u->host = xstrndup(p + 1, (size_t)(rb - p - 1));
		colon = rb + 1 < hostend && rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(p, ':', (size_t)(hostend - p));
		u->host = xstrndup(p, (size_t)((colon ? colon : hostend) - p));
	}
	if (*u->host == '\0') {
		snprintf(err, errlen, "redis URL: no host in '%s'", url);
		goto fail;
	}
	if (colon != NULL) {
		tmp = xstrndup(colon + 1, (size_t)(hostend - colon - 1));
		if (parse_ll(tmp, 1, 65535, &n) == -1) {
			snprintf(err, errlen, "redis URL: bad port '%s'", tmp);
			free(tmp);
			goto fail;
		}
		free(tmp);
		u->port = (int)n;
	}
	if (slash != NULL && slash[1] != '\0') {
		if (parse_ll(slash + 1, 0, 1000000, &n) == -1) {
			snprintf(
			    err, errlen, "redis URL: bad db '%s'", slash + 1);
			goto fail;
		}
		u->db = (int)n;
	}
	return (0);
fail:
	rq_url_free(u);
	return (-1);
}

void
rq_url_free(struct rq_url *u)
{
	free(u->host);
	free(u->path);
	free(u->user);
	free(u->password);
	memset(u, 0, sizeof *u);
}

/* Queue names: 1..128 of [A-Za-z0-9._-], so the hash tag stays intact. */
int
rq_queue_valid(const char *q)
{
	size_t i, n = strlen(q);

	if (n == 0 || n > 128)
		return (0);
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)q[i]) &&
		    strchr("._-", q[i]) == NULL)
			return (0);
	return (1);
}

/* Writes the key prefix cq:{queue}: into buf. Returns -1 if invalid. */
int
rq_prefix(char *buf, size_t len, const char *queue)
{
	if (!rq_queue_valid(queue))
		return (-1);
	if ((size_t)snprintf(buf, len, "cq:{%s}:", queue) >= len)
		return (-1);
	return (0);
}
