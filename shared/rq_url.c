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

/* Which query parameters a URL form takes. */
#define RQ_Q_UNIX     1 /* db, password, user */
#define RQ_Q_SENTINEL 2 /* sentinel-password, sentinel-user */

/* The parameter named by [p, eq) is name. */
static int
rq_url_is(const char *p, const char *eq, const char *name)
{
	return ((size_t)(eq - p) == strlen(name) &&
	    strncmp(p, name, (size_t)(eq - p)) == 0);
}

/* Sets *slot to v, replacing what an earlier parameter set. */
static void
rq_url_take(char **slot, char *v)
{
	free(*slot);
	*slot = v;
}

/* Parses a query: the parameters allowed (RQ_Q_*) go into u. */
static int
rq_url_query(
    const char *q, int allowed, struct rq_url *u, char *err, size_t errlen)
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
		if ((allowed & RQ_Q_UNIX) && rq_url_is(p, eq, "db")) {
			if (parse_ll(v, 0, 1000000, &db) == -1) {
				snprintf(
				    err, errlen, "redis URL: bad db '%s'", v);
				free(v);
				return (-1);
			}
			u->db = (int)db;
			free(v);
		} else if ((allowed & RQ_Q_UNIX) &&
		    rq_url_is(p, eq, "password"))
			rq_url_take(&u->password, v);
		else if ((allowed & RQ_Q_UNIX) && rq_url_is(p, eq, "user"))
			rq_url_take(&u->user, v);
		else if ((allowed & RQ_Q_SENTINEL) &&
		    rq_url_is(p, eq, "sentinel-password"))
			rq_url_take(&u->sentinel_password, v);
		else if ((allowed & RQ_Q_SENTINEL) &&
		    rq_url_is(p, eq, "sentinel-user"))
			rq_url_take(&u->sentinel_user, v);
		else {
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
 * Parses host[:port] or [v6]:port from [p, end) into *host and *port
 * (defport when none). Returns 0, or -1 with err set; url names the whole
 * URL in the error.
 */
static int
rq_url_hostport(const char *p, const char *end, int defport, const char *url,
    char **host, int *port, char *err, size_t errlen)
{
	const char *colon;
	long long   n;
	char	   *tmp;

	*host = NULL;
	*port = defport;
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(end - p));

		if (rb == NULL) {
			snprintf(err, errlen, "redis URL: unclosed '['");
			return (-1);
		}
		*host = xstrndup(p + 1, (size_t)(rb - p - 1));
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
		*host = xstrndup(p, (size_t)((colon ? colon : end) - p));
	}
	if (**host == '\0') {
		snprintf(err, errlen, "redis URL: no host in '%s'", url);
		goto fail;
	}
	if (colon != NULL) {
		tmp = xstrndup(colon + 1, (size_t)(end - colon - 1));
		if (parse_ll(tmp, 1, 65535, &n) == -1) {
			snprintf(err, errlen, "redis URL: bad port '%s'", tmp);
			free(tmp);
			goto fail;
		}
		free(tmp);
		*port = (int)n;
	}
	return (0);
fail:
	free(*host);
	*host = NULL;
	return (-1);
}

/* Parses the comma-separated nodes of [p, end) into u->nodes. */
static int
rq_url_nodes(const char *p, const char *end, int defport, const char *url,
    struct rq_url *u, char *err, size_t errlen)
{
	const char *comma;

	for (;;) {
		comma = memchr(p, ',', (size_t)(end - p));
		if (u->nnodes == RQ_URL_MAX_NODES) {
			snprintf(err, errlen, "redis URL: more than %d nodes",
			    RQ_URL_MAX_NODES);
			return (-1);
		}
		u->nodes = xrealloc(
		    u->nodes, (size_t)(u->nnodes + 1) * sizeof *u->nodes);
		if (rq_url_hostport(p, comma ? comma : end, defport, url,
			&u->nodes[u->nnodes].host, &u->nodes[u->nnodes].port,
			err, errlen) == -1)
			return (-1);
		u->nnodes++;
		if (comma == NULL)
			return (0);
		p = comma + 1;
	}
}

/* Parses a db number ([p, end), empty: 0). */
static int
rq_url_db(
    const char *p, const char *end, struct rq_url *u, char *err, size_t errlen)
{
	long long n;
	char	 *tmp;

	if (p == end)
		return (0);
	tmp = xstrndup(p, (size_t)(end - p));
	if (parse_ll(tmp, 0, 1000000, &n) == -1) {
		snprintf(err, errlen, "redis URL: bad db '%s'", tmp);
		free(tmp);
		return (-1);
	}
	free(tmp);
	u->db = (int)n;
	return (0);
}

/*
 * The part after a sentinel URL's hosts (rest: "", "/..." or "?..."):
 * /master[/db][?query]. A cluster URL takes nothing there but an
 * optional /0 (a cluster has db 0 only).
 */
static int
rq_url_ha_path(const char *rest, const char *url, struct rq_url *u, char *err,
    size_t errlen)
{
	const char *q, *end, *name_end;

	q = strchr(rest, '?');
	end = q != NULL ? q : rest + strlen(rest);
	if (u->kind == RQ_URL_CLUSTER) {
		if (q != NULL) {
			snprintf(err, errlen,
			    "redis URL: a cluster URL takes no parameters");
			return (-1);
		}
		if (*rest == '/' &&
		    rq_url_db(rest + 1, end, u, err, errlen) == -1)
			return (-1);
		if (u->db != 0) {
			snprintf(err, errlen,
			    "redis URL: a Redis Cluster has db 0 only");
			return (-1);
		}
		return (0);
	}
	if (*rest != '/' || rest + 1 == end) {
		snprintf(err, errlen,
		    "redis URL: no master name in '%s' (redis+sentinel://HOST[:PORT][,...]/MASTER)",
		    url);
		return (-1);
	}
	name_end = memchr(rest + 1, '/', (size_t)(end - rest - 1));
	if (name_end == NULL)
		name_end = end;
	u->master = rq_url_unescape(rest + 1, (size_t)(name_end - rest - 1));
	/* An empty name ("//", "/%00") would ask the sentinels for "". */
	if (u->master[0] == '\0') {
		snprintf(err, errlen,
		    "redis URL: empty master name in '%s' (redis+sentinel://HOST[:PORT][,...]/MASTER)",
		    url);
		return (-1);
	}
	if (name_end < end &&
	    rq_url_db(name_end + 1, end, u, err, errlen) == -1)
		return (-1);
	if (q != NULL &&
	    rq_url_query(q + 1, RQ_Q_SENTINEL, u, err, errlen) == -1)
		return (-1);
	return (0);
}

/* The URL's scheme: its kind, TLS, and the length of scheme:// (0: none). */
static size_t
rq_url_scheme(const char *url, struct rq_url *u)
{
	static const struct {
		const char	*name;
		enum rq_url_kind kind;
		int		 tls;
	} schemes[] = {
		{ "redis://", RQ_URL_SERVER, 0 },
		{ "rediss://", RQ_URL_SERVER, 1 },
		{ "redis+sentinel://", RQ_URL_SENTINEL, 0 },
		{ "rediss+sentinel://", RQ_URL_SENTINEL, 1 },
		{ "redis+cluster://", RQ_URL_CLUSTER, 0 },
		{ "rediss+cluster://", RQ_URL_CLUSTER, 1 },
	};
	size_t i, n;

	for (i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
		n = strlen(schemes[i].name);
		if (strncmp(url, schemes[i].name, n) == 0) {
			u->kind = schemes[i].kind;
			u->tls = schemes[i].tls;
			return (n);
		}
	}
	return (0);
}

/*
 * Parses redis://[[user][:password]@]host[:port][/db], the same with
 * rediss:// (TLS: u->tls set), unix:///path[?db=N&password=P&user=U],
 * redis+sentinel://[[user][:password]@]host[:port][,host[:port]...]/master
 * [/db][?sentinel-password=P&sentinel-user=U] (port 26379 by default; the
 * user and password are the master's) and
 * redis+cluster://[[user][:password]@]host[:port][,host[:port]...], each
 * of the last two with an rediss+ twin. Returns 0, or -1 with err set.
 */
int
rq_url_parse(const char *url, struct rq_url *u, char *err, size_t errlen)
{
	const char *p, *at, *hostend, *slash, *colon, *q;
	size_t	    n;

	memset(u, 0, sizeof *u);
	u->port = RQ_URL_DEFAULT_PORT;
	if (strncmp(url, "unix://", 7) == 0) {
		p = url + 7;
		q = strchr(p, '?');
		if (*p != '/') {
			snprintf(err, errlen,
			    "redis URL: unix:// needs an absolute path");
			return (-1);
		}
		u->path = xstrndup(p, q ? (size_t)(q - p) : strlen(p));
		if (q != NULL &&
		    rq_url_query(q + 1, RQ_Q_UNIX, u, err, errlen) == -1)
			goto fail;
		return (0);
	}
	if ((n = rq_url_scheme(url, u)) == 0) {
		snprintf(err, errlen,
		    "redis URL: '%s' does not start with redis://, rediss://, "
		    "redis+sentinel://, redis+cluster:// or unix://",
		    url);
		return (-1);
	}
	p = url + n;
	if (u->kind == RQ_URL_SERVER) {
		slash = strchr(p, '/');
		hostend = slash ? slash : p + strlen(p);
	} else
		slash = hostend = p + strcspn(p, "/?");
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
	if (u->kind != RQ_URL_SERVER) {
		if (rq_url_nodes(p, hostend,
			u->kind == RQ_URL_SENTINEL ? RQ_SENTINEL_PORT
						   : RQ_URL_DEFAULT_PORT,
			url, u, err, errlen) == -1 ||
		    rq_url_ha_path(hostend, url, u, err, errlen) == -1)
			goto fail;
		u->port = 0;
		return (0);
	}
	if (rq_url_hostport(p, hostend, RQ_URL_DEFAULT_PORT, url, &u->host,
		&u->port, err, errlen) == -1)
		goto fail;
	if (slash != NULL &&
	    rq_url_db(slash + 1, slash + strlen(slash), u, err, errlen) == -1)
		goto fail;
	return (0);
fail:
	rq_url_free(u);
	return (-1);
}

/* Points u at host:port (the node a sentinel or a MOVED named). */
void
rq_url_set_node(struct rq_url *u, const char *host, int port)
{
	char *h = xstrdup(host);

	free(u->host);
	u->host = h;
	u->port = port;
}

void
rq_url_free(struct rq_url *u)
{
	int i;

	free(u->host);
	free(u->path);
	free(u->user);
	free(u->password);
	for (i = 0; i < u->nnodes; i++)
		free(u->nodes[i].host);
	free(u->nodes);
	free(u->master);
	free(u->sentinel_user);
	free(u->sentinel_password);
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
