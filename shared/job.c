/*
 * Job spec parsing and checks (see job.h). The rules, their order of
 * precedence and their messages mirror lua/spec.lua; tests/data/specs holds
 * the corpus both are tested against. Lookups are case-sensitive: cJSON's
 * plain cJSON_GetObjectItem is not.
 *
 * Text rules. The whole spec must be UTF-8 (RFC 8259 asks it of JSON that
 * crosses systems; the strings of a spec come back to producers in events)
 * and must hold no NUL, raw or as \u0000 (C strings would end there, Lua
 * strings not, and the two checks would disagree). The fields a person
 * reads in a listing (workflow, tenant, idempotency_key, webhook) must hold
 * no control character: C0, DEL, or C1 (U+0080..U+009F, which some
 * terminals obey too), so no forged line or terminal escape can ride on
 * them. params, inputs and meta are the producer's data: passed on as
 * they are, JSON-escaped in events, and escaped by whatever prints them.
 * webhook_progress true (progress webhooks) needs a webhook; false asks
 * for nothing and is fine without one.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "job.h"
#include "util.h"

const struct job_limits job_limits_default = {
	.max_spec_bytes = 1048576,
	.max_prompt_len = 8192,
	.max_param_len = 65536,
};

#define BAD(field, ...)                                                        \
	do {                                                                   \
		int _n = snprintf(err, errlen, "spec.%s: ", (field));          \
		if (_n >= 0 && (size_t)_n < errlen)                            \
			snprintf(err + _n, errlen - (size_t)_n, __VA_ARGS__);  \
		return (-1);                                                   \
	} while (0)

static int
job_check_string(
    const cJSON *v, const char *field, size_t max, char *err, size_t errlen)
{
	size_t len;

	if (!cJSON_IsString(v))
		BAD(field, "must be a string");
	len = strlen(v->valuestring);
	if (len > max)
		BAD(field, "%zu bytes over the %zu byte limit", len, max);
	return (0);
}

/* Whether s[0..len) is UTF-8. */
static int
job_utf8_ok(const unsigned char *s, size_t len)
{
	size_t i, n;

	for (i = 0; i < len; i += n)
		if ((n = utf8_len(s + i, len - i)) == 0)
			return (0);
	return (1);
}

/* Whether text holds a NUL: a raw byte, or a \u0000 escape (one preceded
 * by an even number of backslashes). */
static int
job_has_nul(const char *text, size_t len)
{
	size_t i, b;

	if (memchr(text, '\0', len) != NULL)
		return (1);
	for (i = 0; i + 6 <= len; i++) {
		if (memcmp(text + i, "\\u0000", 6) != 0)
			continue;
		for (b = i; b > 0 && text[b - 1] == '\\'; b--)
			;
		if ((i - b) % 2 == 0)
			return (1);
	}
	return (0);
}

/* Whether the UTF-8 string s holds a C0 or C1 control character or DEL. */
static int
job_has_ctl(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f ||
		    (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
			return (1);
	return (0);
}

/* A string field a listing shows: job_check_string, and no control
 * character. */
static int
job_check_text(
    const cJSON *v, const char *field, size_t max, char *err, size_t errlen)
{
	if (job_check_string(v, field, max, err, errlen) == -1)
		return (-1);
	if (job_has_ctl(v->valuestring))
		BAD(field, "must not hold control characters");
	return (0);
}

static int
job_check_int(const cJSON *v, const char *field, long long lo, long long hi,
    long long *out, char *err, size_t errlen)
{
	double d;

	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
	    floor(v->valuedouble) != v->valuedouble)
		BAD(field, "must be an integer");
	d = v->valuedouble;
	if (d < (double)lo || d > (double)hi)
		BAD(field, "%.0f not in %lld..%lld", d, lo, hi);
	*out = (long long)d;
	return (0);
}

static int
job_check_params(
    const cJSON *params, const struct job_limits *lim, char *err, size_t errlen)
{
	const cJSON *v;
	char	     field[300];
	int	     n = 0;

	if (!cJSON_IsObject(params))
		BAD("params", "must be an object");
	cJSON_ArrayForEach(v, params) {
		n++;
		snprintf(field, sizeof field, "params.%s", v->string);
		if (cJSON_IsString(v)) {
			size_t cap = strcmp(v->string, "prompt") == 0 ||
				strcmp(v->string, "negative_prompt") == 0
			    ? lim->max_prompt_len
			    : lim->max_param_len;

			if (job_check_string(v, field, cap, err, errlen) == -1)
				return (-1);
		} else if (cJSON_IsNumber(v)) {
			if (!isfinite(v->valuedouble))
				BAD(field, "must be a finite number");
		} else if (!cJSON_IsBool(v))
			BAD(field, "must be a string, number or boolean");
	}
	if (n > 256)
		BAD("params", "%d entries over the 256 limit", n);
	return (0);
}

static int
job_check_list(
    const cJSON *v, const char *field, int max, char *err, size_t errlen)
{
	const cJSON *item;
	char	     name[64];
	int	     n, i = 0;

	if (!cJSON_IsArray(v))
		BAD(field, "must be an array");
	n = cJSON_GetArraySize(v);
	if (n > max)
		BAD(field, "%d entries over the %d limit", n, max);
	cJSON_ArrayForEach(item, v) {
		if (!cJSON_IsString(item) && !cJSON_IsObject(item)) {
			snprintf(name, sizeof name, "%s[%d]", field, i);
			BAD(name, "must be a string or an object");
		}
		i++;
	}
	return (0);
}

static int
job_check_graph(const cJSON *g, char *err, size_t errlen)
{
	const cJSON *node, *ct;
	char	     field[300];

	if (!cJSON_IsObject(g) || g->child == NULL)
		BAD("graph", "must be a non-empty object of nodes");
	cJSON_ArrayForEach(node, g) {
		ct = cJSON_IsObject(node)
		    ? cJSON_GetObjectItemCaseSensitive(node, "class_type")
		    : NULL;
		if (!cJSON_IsString(ct)) {
			snprintf(field, sizeof field, "graph.%s", node->string);
			BAD(field, "must be a node with a class_type");
		}
	}
	return (0);
}

static int
job_name_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			(*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return (0);
	return (1);
}

/* Checks one top-level field and stores it in js. */
static int
job_check_field(struct job_spec *js, const cJSON *v,
    const struct job_limits *lim, char *err, size_t errlen)
{
	const char  *k = v->string;
	const cJSON *s;

	if (strcmp(k, "workflow") == 0) {
		if (job_check_text(v, k, 64, err, errlen) == -1)
			return (-1);
		if (!job_name_ok(v->valuestring))
			BAD(k, "'%s' may hold only letters, digits, _ and -",
			    v->valuestring);
		js->workflow = v->valuestring;
	} else if (strcmp(k, "graph") == 0) {
		if (job_check_graph(v, err, errlen) == -1)
			return (-1);
		js->graph = v;
	} else if (strcmp(k, "params") == 0) {
		if (job_check_params(v, lim, err, errlen) == -1)
			return (-1);
		js->params = v;
	} else if (strcmp(k, "loras") == 0) {
		if (job_check_list(v, k, 16, err, errlen) == -1)
			return (-1);
		js->loras = v;
	} else if (strcmp(k, "controlnets") == 0) {
		if (job_check_list(v, k, 8, err, errlen) == -1)
			return (-1);
		js->controlnets = v;
	} else if (strcmp(k, "inputs") == 0) {
		char field[300];

		if (!cJSON_IsObject(v))
			BAD(k, "must be an object");
		cJSON_ArrayForEach(s, v) {
			snprintf(field, sizeof field, "inputs.%s", s->string);
			if (job_check_string(s, field, lim->max_spec_bytes, err,
				errlen) == -1)
				return (-1);
		}
		js->inputs = v;
	} else if (strcmp(k, "tenant") == 0) {
		if (job_check_text(v, k, 128, err, errlen) == -1)
			return (-1);
		js->tenant = v->valuestring;
	} else if (strcmp(k, "priority") == 0) {
		if (!cJSON_IsString(v) ||
		    (strcmp(v->valuestring, "high") != 0 &&
			strcmp(v->valuestring, "normal") != 0 &&
			strcmp(v->valuestring, "low") != 0))
			BAD(k, "must be one of high, normal, low");
		js->priority = v->valuestring;
	} else if (strcmp(k, "idempotency_key") == 0) {
		if (job_check_text(v, k, 256, err, errlen) == -1)
			return (-1);
		if (*v->valuestring == '\0')
			BAD(k, "must not be empty");
		js->idempotency_key = v->valuestring;
	} else if (strcmp(k, "timeout_s") == 0) {
		return (
		    job_check_int(v, k, 1, 86400, &js->timeout_s, err, errlen));
	} else if (strcmp(k, "max_attempts") == 0) {
		return (
		    job_check_int(v, k, 1, 20, &js->max_attempts, err, errlen));
	} else if (strcmp(k, "webhook") == 0) {
		if (job_check_text(v, k, 2048, err, errlen) == -1)
			return (-1);
		if ((strncmp(v->valuestring, "http://", 7) != 0 &&
			strncmp(v->valuestring, "https://", 8) != 0) ||
		    strchr(v->valuestring, ' ') != NULL ||
		    strlen(v->valuestring) <=
			(v->valuestring[4] == 's' ? 8u : 7u))
			BAD(k, "must be an http:// or https:// URL");
		js->webhook = v->valuestring;
	} else if (strcmp(k, "webhook_progress") == 0) {
		if (!cJSON_IsBool(v))
			BAD(k, "must be true or false");
		js->webhook_progress = cJSON_IsTrue(v);
	} else if (strcmp(k, "meta") == 0) {
		char  *text;
		size_t len;

		if (!cJSON_IsObject(v))
			BAD(k, "must be an object");
		text = cJSON_PrintUnformatted(v);
		len = text ? strlen(text) : 0;
		cJSON_free(text);
		if (len > 16384)
			BAD(k, "over the 16384 byte limit");
		js->meta = v;
	} else if (strcmp(k, "run_at") == 0) {
		return (job_check_int(
		    v, k, 0, 4102444800000LL, &js->run_at, err, errlen));
	} else if (strcmp(k, "vram_mb") == 0) {
		return (
		    job_check_int(v, k, 0, 1048576, &js->vram_mb, err, errlen));
	} else
		BAD(k, "unknown field");
	return (0);
}

/* Checks an already parsed tree (js->root) and fills in the fields. */
int
job_spec_check(
    struct job_spec *js, const struct job_limits *lim, char *err, size_t errlen)
{
	const cJSON *v;

	if (!cJSON_IsObject(js->root)) {
		snprintf(err, errlen, "spec: must be a JSON object");
		return (-1);
	}
	js->workflow = NULL;
	js->graph = js->params = js->loras = js->controlnets = NULL;
	js->inputs = js->meta = NULL;
	js->tenant = js->priority = js->idempotency_key = js->webhook = NULL;
	js->timeout_s = js->run_at = js->vram_mb = 0;
	js->webhook_progress = 0;
	js->max_attempts = 3;
	cJSON_ArrayForEach(v, js->root) {
		if (job_check_field(js, v, lim, err, errlen) == -1)
			return (-1);
	}
	if (js->workflow == NULL && js->graph == NULL) {
		snprintf(err, errlen, "spec: give a workflow or a graph");
		return (-1);
	}
	if (js->workflow != NULL && js->graph != NULL) {
		snprintf(
		    err, errlen, "spec: give a workflow or a graph, not both");
		return (-1);
	}
	if (js->webhook_progress && js->webhook == NULL) {
		snprintf(err, errlen,
		    "spec.webhook_progress: needs a webhook URL to send to");
		return (-1);
	}
	if (js->priority == NULL)
		js->priority = "normal";
	return (0);
}

/*
 * Parses and checks the spec in text[0..len). Returns 0, the caller then
 * freeing js with job_spec_free(), or -1 with the reason in err
 * ("spec.<field>: <rule>") and nothing left in js.
 */
int
job_spec_parse(struct job_spec *js, const char *text, size_t len,
    const struct job_limits *lim, char *err, size_t errlen)
{
	const char *end = NULL;

	memset(js, 0, sizeof *js);
	if (lim == NULL)
		lim = &job_limits_default;
	if (len == 0) {
		snprintf(err, errlen, "spec: missing");
		return (-1);
	}
	if (len > lim->max_spec_bytes) {
		snprintf(err, errlen, "spec: %zu bytes over the %zu byte limit",
		    len, lim->max_spec_bytes);
		return (-1);
	}
	if (!job_utf8_ok((const unsigned char *)text, len)) {
		snprintf(err, errlen, "spec: not valid UTF-8");
		return (-1);
	}
	if (job_has_nul(text, len)) {
		snprintf(err, errlen, "spec: must not hold NUL (\\u0000)");
		return (-1);
	}
	js->root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (js->root != NULL && end != NULL) {
		/* Only white space may follow the document. */
		while (end < text + len && strchr(" \t\r\n", *end) != NULL &&
		    *end != '\0')
			end++;
	}
	if (js->root == NULL || end != text + len) {
		snprintf(err, errlen, "spec: not valid JSON");
		job_spec_free(js);
		return (-1);
	}
	if (job_spec_check(js, lim, err, errlen) == -1) {
		job_spec_free(js);
		return (-1);
	}
	return (0);
}

void
job_spec_free(struct job_spec *js)
{
	cJSON_Delete(js->root);
	memset(js, 0, sizeof *js);
}
