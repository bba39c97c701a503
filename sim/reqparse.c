/*
 * The sim's request parsing (see reqparse.h): routes, the CSRF guard's
 * host comparison, JSON bodies and multipart forms. No sim state and no
 * replies here; http.c and upload.c act on what these return.
 */
#define _GNU_SOURCE /* memmem */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>

#include "reqparse.h"
#include "xmalloc.h"

#define GET  (EVHTTP_REQ_GET | EVHTTP_REQ_HEAD)
#define POST EVHTTP_REQ_POST

/* Like ComfyUI's aiohttp app, each route also answers under /api. */
const struct rp_route_def rp_routes[RP_NROUTES] = {
	[RP_WS] = { GET, "/ws", 0, RP_NONE },
	[RP_PROMPT_GET] = { GET, "/prompt", 0, RP_NONE },
	[RP_PROMPT_POST] = { POST, "/prompt", 0, RP_JSON },
	[RP_QUEUE_GET] = { GET, "/queue", 0, RP_NONE },
	[RP_QUEUE_POST] = { POST, "/queue", 0, RP_JSON },
	[RP_INTERRUPT] = { POST, "/interrupt", 0, RP_JSON_OPT },
	[RP_FREE] = { POST, "/free", 0, RP_JSON },
	[RP_HISTORY_GET] = { GET, "/history", 0, RP_NONE },
	[RP_HISTORY_ONE] = { GET, "/history/", 1, RP_NONE },
	[RP_HISTORY_POST] = { POST, "/history", 0, RP_JSON },
	[RP_VIEW] = { GET, "/view", 0, RP_NONE },
	[RP_UPLOAD_IMAGE] = { POST, "/upload/image", 0, RP_NONE },
	[RP_SYSTEM_STATS] = { GET, "/system_stats", 0, RP_NONE },
	[RP_OBJECT_INFO] = { GET, "/object_info", 0, RP_NONE },
	[RP_OBJECT_INFO_ONE] = { GET, "/object_info/", 1, RP_NONE },
	[RP_FEATURES] = { GET, "/features", 0, RP_NONE },
	[RP_MODELS] = { GET, "/models", 0, RP_NONE },
	[RP_MODELS_ONE] = { GET, "/models/", 1, RP_NONE },
	[RP_EMBEDDINGS] = { GET, "/embeddings", 0, RP_NONE },
	[RP_FAULTS_GET] = { GET, "/sim/faults", 0, RP_NONE },
	[RP_FAULTS_POST] = { POST, "/sim/faults", 0, RP_JSON_OPT },
	[RP_SIM_STATS] = { GET, "/sim/stats", 0, RP_NONE },
};

int
rp_route(int method, const char *raw_path, enum rp_route *route, char **rest)
{
	const struct rp_route_def *r;
	char			  *path, *p;
	int			   found = 0;
	size_t			   i, n;

	*rest = NULL;
	if (raw_path == NULL ||
	    (path = evhttp_uridecode(raw_path, 0, NULL)) == NULL)
		return (404);
	p = strncmp(path, "/api/", 5) == 0 ? path + 4 : path;
	for (i = 0; i < RP_NROUTES; i++) {
		r = &rp_routes[i];
		n = strlen(r->path);
		if (r->prefix ? (strncmp(p, r->path, n) != 0 || p[n] == '\0' ||
				    strchr(p + n, '/') != NULL)
			      : strcmp(p, r->path) != 0)
			continue;
		found = 1;
		if (r->methods & method)
			break;
	}
	if (i == RP_NROUTES) {
		free(path);
		return (found ? 405 : 404);
	}
	*route = (enum rp_route)i;
	if (rp_routes[i].prefix)
		*rest = xstrdup(p + strlen(rp_routes[i].path));
	free(path);
	return (0);
}

static int
rp_is_loopback(const char *host)
{
	return (strcasecmp(host, "localhost") == 0 ||
	    strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0);
}

/* host[:port] of a Host header or an Origin URL, lower-cased. */
static void
rp_hostport(const char *s, char *host, size_t hl, char *port, size_t pl)
{
	const char *p = strstr(s, "://"), *e, *c;
	size_t	    n, i;

	s = p != NULL ? p + 3 : s;
	e = s + strcspn(s, "/?#");
	if (*s == '[' && (c = memchr(s, ']', (size_t)(e - s))) != NULL) {
		n = (size_t)(c - s - 1);
		s++;
		c = c + 1 < e && c[1] == ':' ? c + 1 : NULL;
	} else {
		c = memchr(s, ':', (size_t)(e - s));
		n = (size_t)((c != NULL ? c : e) - s);
	}
	snprintf(host, hl, "%.*s", (int)n, s);
	for (i = 0; host[i] != '\0'; i++)
		host[i] = (char)tolower((unsigned char)host[i]);
	snprintf(port, pl, "%.*s", c != NULL ? (int)(e - c - 1) : 0,
	    c != NULL ? c + 1 : "");
}

int
rp_foreign_origin(const char *host, const char *origin)
{
	char hh[256], hp[16], oh[256], op[16];

	if (host == NULL || origin == NULL)
		return (0);
	rp_hostport(host, hh, sizeof hh, hp, sizeof hp);
	rp_hostport(origin, oh, sizeof oh, op, sizeof op);
	if (!rp_is_loopback(hh) || hh[0] == '\0' || oh[0] == '\0')
		return (0);
	/* A side without a port compares hosts only. */
	if (op[0] == '\0' || hp[0] == '\0')
		return (strcmp(hh, oh) != 0);
	return (strcmp(hh, oh) != 0 || strcmp(hp, op) != 0);
}

cJSON *
rp_json(const char *data, size_t len)
{
	const char *end = NULL;
	cJSON	   *j;

	if (len == 0)
		return (NULL);
	if ((j = cJSON_ParseWithLengthOpts(data, len, &end, 0)) == NULL)
		return (NULL);
	while (end < data + len && isspace((unsigned char)*end))
		end++;
	if (end != data + len) {
		cJSON_Delete(j);
		return (NULL);
	}
	return (j);
}

int
rp_json_keys(const cJSON *j, const char *k1, const char *k2)
{
	const cJSON *it;

	if (cJSON_IsObject(j))
		return (0);
	if (cJSON_IsString(j))
		return (strstr(j->valuestring, k1) || strstr(j->valuestring, k2)
			? -1
			: 1);
	if (!cJSON_IsArray(j))
		return (-1);
	cJSON_ArrayForEach(it, j) {
		if (cJSON_IsString(it) &&
		    (strcmp(it->valuestring, k1) == 0 ||
			strcmp(it->valuestring, k2) == 0))
			return (-1);
	}
	return (1);
}

void
rp_form_free(struct rp_form *f)
{
	int i;

	for (i = 0; i < f->n; i++) {
		free(f->p[i].name);
		free(f->p[i].filename);
	}
	f->n = 0;
}

const struct rp_part *
rp_form_get(const struct rp_form *f, const char *name)
{
	int i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->p[i].name, name) == 0)
			return (&f->p[i]);
	return (NULL);
}

/* A parameter of a header value: name="value" or name=value. */
static char *
rp_param(const char *h, size_t hl, const char *param)
{
	size_t	    pl = strlen(param);
	const char *p = h, *e = h + hl, *v, *q;

	for (; p + pl + 1 < e; p++) {
		if ((p != h && p[-1] != ';' && p[-1] != ' ') ||
		    strncasecmp(p, param, pl) != 0 || p[pl] != '=')
			continue;
		v = p + pl + 1;
		if (*v == '"') {
			q = memchr(v + 1, '"', (size_t)(e - v - 1));
			if (q == NULL)
				return (NULL);
			return (xstrndup(v + 1, (size_t)(q - v - 1)));
		}
		for (q = v; q < e && *q != ';' && *q != '\r' && *q != '\n'; q++)
			;
		return (xstrndup(v, (size_t)(q - v)));
	}
	return (NULL);
}

/* Splits a multipart/form-data body; -1 when it is malformed. */
static int
rp_split(const char *body, size_t len, const char *boundary, struct rp_form *f)
{
	char	    delim[256];
	size_t	    dl;
	const char *p, *end = body + len, *hend, *next, *cd;

	dl = (size_t)snprintf(delim, sizeof delim, "\r\n--%s", boundary);
	if (dl >= sizeof delim)
		return (-1);
	/* The first delimiter may come without the leading CRLF. */
	if (len >= dl - 2 && memcmp(body, delim + 2, dl - 2) == 0)
		p = body + dl - 2;
	else if ((p = memmem(body, len, delim, dl)) != NULL)
		p += dl;
	else
		return (-1);
	for (;;) {
		if (end - p >= 2 && memcmp(p, "--", 2) == 0)
			return (0);
		if (end - p < 2 || memcmp(p, "\r\n", 2) != 0)
			return (-1);
		p += 2;
		if ((hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4)) ==
		    NULL)
			return (-1);
		if ((next = memmem(hend + 4, (size_t)(end - hend - 4), delim,
			 dl)) == NULL ||
		    f->n == RP_MAX_PARTS)
			return (-1);
		cd = memmem(p, (size_t)(hend - p), "Content-Disposition:", 20);
		if (cd == NULL)
			cd = memmem(
			    p, (size_t)(hend - p), "content-disposition:", 20);
		if (cd != NULL) {
			const char *cr =
			    memchr(cd, '\r', (size_t)(hend + 2 - cd));
			size_t cl = (size_t)(cr - cd);

			f->p[f->n].name = rp_param(cd, cl, "name");
			f->p[f->n].filename = rp_param(cd, cl, "filename");
			f->p[f->n].data = hend + 4;
			f->p[f->n].len = (size_t)(next - hend - 4);
			if (f->p[f->n].name != NULL)
				f->n++;
			else
				free(f->p[f->n].filename);
		}
		p = next + dl;
	}
}

int
rp_form_parse(const char *content_type, const char *body, size_t len,
    struct rp_form *f)
{
	char *boundary;
	int   rc;

	memset(f, 0, sizeof *f);
	if (content_type == NULL ||
	    strncasecmp(content_type, "multipart/form-data", 19) != 0)
		return (0);
	boundary = rp_param(content_type, strlen(content_type), "boundary");
	if (boundary == NULL || *boundary == '\0') {
		free(boundary);
		return (-1);
	}
	rc = rp_split(len > 0 ? body : "", len, boundary, f);
	free(boundary);
	return (rc);
}
