/*
 * The sim's request parsing, apart from its handlers and its state so that
 * it links on its own (tests/fuzz/fuzz_simreq.c): which route a method and
 * a raw path name (the /api twins, 404 and 405), the CSRF guard's
 * verdict on Host and Origin, the JSON body as json.loads() takes it, the
 * key checks of a JSON body that is no object, and a multipart/form-data
 * body split into its parts. http.c and upload.c do the rest with what
 * these return. Methods are evhttp's EVHTTP_REQ_* bits.
 */
#ifndef COMFYQ_SIM_REQPARSE_H
#define COMFYQ_SIM_REQPARSE_H

#include <stddef.h>

#include <cjson/cJSON.h>

enum rp_body {
	RP_NONE,     /* no body read */
	RP_JSON,     /* a JSON body, or 500 */
	RP_JSON_OPT, /* a JSON body when there is one that parses */
};

/* The routes http.c serves, in its table's order (enum rp_route). */
enum rp_route {
	RP_WS,
	RP_PROMPT_GET,
	RP_PROMPT_POST,
	RP_QUEUE_GET,
	RP_QUEUE_POST,
	RP_INTERRUPT,
	RP_FREE,
	RP_HISTORY_GET,
	RP_HISTORY_ONE,
	RP_HISTORY_POST,
	RP_VIEW,
	RP_UPLOAD_IMAGE,
	RP_SYSTEM_STATS,
	RP_OBJECT_INFO,
	RP_OBJECT_INFO_ONE,
	RP_FEATURES,
	RP_MODELS,
	RP_MODELS_ONE,
	RP_EMBEDDINGS,
	RP_FAULTS_GET,
	RP_FAULTS_POST,
	RP_SIM_STATS,
	RP_NROUTES
};

struct rp_route_def {
	int	     methods; /* EVHTTP_REQ_* bits */
	const char  *path;
	int	     prefix; /* path ends in '/': one more segment follows */
	enum rp_body body;
};

extern const struct rp_route_def rp_routes[RP_NROUTES];

/*
 * The route for method and the raw (still %-escaped) path: 0 with *route
 * and *rest (the segment after a prefix route, malloc'd, or NULL), or the
 * status to answer: 404 (no such path, or one that does not decode) or
 * 405 (the path is there, the method is not).
 */
int rp_route(int method, const char *raw_path, enum rp_route *route,
    char **rest);

/* create_origin_only_middleware(): 1 when Host (loopback) and Origin name
 * different hosts or ports, so the request gets 403. Either may be NULL. */
int rp_foreign_origin(const char *host, const char *origin);

/* json.loads(): the whole body is one JSON value (NULL: it is not). */
cJSON *rp_json(const char *data, size_t len);

/*
 * For a JSON body that is not an object: would `"k" in body` followed by
 * body["k"] raise in Python? 0: it is an object; 1: a list or string that
 * holds neither key (a no-op); -1: Python raises (500).
 */
int rp_json_keys(const cJSON *j, const char *k1, const char *k2);

/* A multipart/form-data body, split. data points into the body. */
#define RP_MAX_PARTS 64

struct rp_part {
	char	   *name;
	char	   *filename; /* NULL: a plain field */
	const char *data;
	size_t	    len;
};

struct rp_form {
	struct rp_part p[RP_MAX_PARTS];
	int	       n;
};

/*
 * Splits body by the boundary of content_type into f (zeroed first). A
 * Content-Type that is not multipart/form-data leaves f empty: 0. -1: a
 * multipart type without a boundary, or a body that does not split (the
 * sim answers 500, as aiohttp raises). f is freed with rp_form_free()
 * either way.
 */
int  rp_form_parse(const char *content_type, const char *body, size_t len,
     struct rp_form *f);
void rp_form_free(struct rp_form *f);
/* The first part named name, or NULL. */
const struct rp_part *rp_form_get(const struct rp_form *f, const char *name);

#endif
