/*
 * LoRA parsing and injection (see lora.h).
 *
 * Tags follow the A1111 form: <lora:NAME>, <lora:NAME:W> (one weight for
 * both UNet and text encoder) or <lora:NAME:UNET:TENC>; "lora" in any case,
 * spaces around the parts ignored. Anything that does not parse as such a
 * tag (no closing '>', an empty name, a weight that is not a number) is
 * ordinary prompt text and stays where it is. A tag that parses but whose
 * weight is out of range is refused, so a typo never costs money silently.
 * The same LoRA twice (in the list, a tag, or both) is refused too.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "confine.h"
#include "errout.h"
#include "graph.h"
#include "lora.h"
#include "util.h"

/*
 * A LoRA file name: 1..200 bytes that obey confine.h's name rule
 * (relative, no "..", no ':' or backslash, no control characters, no
 * empty or "." parts), no '<' or '>' (the tag's brackets), and no
 * trailing '.', which the added ".safetensors" would make "..".
 * Subfolders ("style/anime") are allowed.
 */
int
lora_name_ok(const char *s)
{
	char   why[128];
	size_t n = strlen(s);

	return (n <= 200 && strpbrk(s, "<>") == NULL &&
	    confine_name(s, why, sizeof why) == 0 && s[n - 1] != '.');
}

/* Appends .safetensors to a name without a model file extension. */
static void
lora_file_name(char out[LORA_NAME_MAX], const char *name)
{
	static const char *const ext[] = { ".safetensors", ".ckpt", ".pt",
		".pth", ".bin" };
	size_t			 i, n = strlen(name), e;

	for (i = 0; i < sizeof ext / sizeof ext[0]; i++) {
		e = strlen(ext[i]);
		if (n > e && strcasecmp(name + n - e, ext[i]) == 0) {
			snprintf(out, LORA_NAME_MAX, "%s", name);
			return;
		}
	}
	snprintf(out, LORA_NAME_MAX, "%s.safetensors", name);
}

static int
lora_weight_ok(double w)
{
	return (isfinite(w) && fabs(w) <= LORA_WEIGHT_MAX);
}

/* Adds one LoRA after the checks every source shares. */
static int
lora_add(struct lora_list *ll, const char *from, const char *name, double sm,
    double sc, char *err, size_t errlen)
{
	struct lora *l;
	char	     file[LORA_NAME_MAX];
	int	     i;

	if (!lora_name_ok(name))
		ERR_OUT(
		    "%s: name '%.64s' must be a relative path of 1..200 bytes without control characters, '\\', ':', '<', '>', '..', empty parts or a trailing '.'",
		    from, name);
	if (!lora_weight_ok(sm) || !lora_weight_ok(sc))
		ERR_OUT("%s: weight %g not in -%g..%g", from,
		    lora_weight_ok(sm) ? sc : sm, LORA_WEIGHT_MAX,
		    LORA_WEIGHT_MAX);
	lora_file_name(file, name);
	for (i = 0; i < ll->n; i++)
		if (strcmp(ll->l[i].name, file) == 0)
			ERR_OUT("%s: %s is already given by %s", from, file,
			    ll->l[i].from);
	if (ll->n == LORA_MAX)
		ERR_OUT("%s: over %d LoRAs", from, LORA_MAX);
	l = &ll->l[ll->n++];
	snprintf(l->name, sizeof l->name, "%s", file);
	snprintf(l->from, sizeof l->from, "%s", from);
	l->strength_model = sm;
	l->strength_clip = sc;
	return (0);
}

/* Parses "W" or "W:W" after a name; 0, or -1 when it is not numbers. */
static int
lora_parse_weights(char *s, double *sm, double *sc)
{
	char *colon, *a, *b;

	*sm = *sc = 1.0;
	if (s == NULL)
		return (0);
	if ((colon = strchr(s, ':')) != NULL)
		*colon = '\0';
	a = s;
	while (isspace((unsigned char)*a))
		a++;
	b = a + strlen(a);
	while (b > a && isspace((unsigned char)b[-1]))
		*--b = '\0';
	if (parse_double(a, -1e300, 1e300, sm) == -1)
		return (-1);
	*sc = *sm;
	if (colon == NULL)
		return (0);
	if (strchr(colon + 1, ':') != NULL)
		return (-1);
	return (lora_parse_weights(colon + 1, sc, sc));
}

/*
 * One entry of "loras" (named from, e.g. "loras[2]"): a string
 * "name[:w[:w]]" or an object, added to ll and checked against the
 * entries already there.
 */
int
lora_parse_entry(const cJSON *v, const char *from, struct lora_list *ll,
    char *err, size_t errlen)
{
	const cJSON *f;
	char	     buf[LORA_NAME_MAX + 64], *colon;
	double	     sm = 1.0, sc;

	if (cJSON_IsString(v)) {
		if (strlen(v->valuestring) >= sizeof buf)
			ERR_OUT("%s: over %zu bytes", from, sizeof buf - 1);
		snprintf(buf, sizeof buf, "%s", v->valuestring);
		if ((colon = strchr(buf, ':')) != NULL)
			*colon++ = '\0';
		if (lora_parse_weights(colon, &sm, &sc) == -1)
			ERR_OUT("%s: '%s' is not NAME[:WEIGHT[:CLIP_WEIGHT]]",
			    from, v->valuestring);
		return (lora_add(ll, from, buf, sm, sc, err, errlen));
	}
	/* The spec parser refuses other types; a spec made in code (a
	 * struct job_spec filled by hand) gets the same answer here. */
	if (!cJSON_IsObject(v))
		ERR_OUT("%s: must be a string or an object", from);
	cJSON_ArrayForEach(f, v) {
		if (strcmp(f->string, "name") != 0 &&
		    strcmp(f->string, "strength_model") != 0 &&
		    strcmp(f->string, "strength_clip") != 0 &&
		    strcmp(f->string, "enabled") != 0)
			ERR_OUT(
			    "%s.%s: unknown field (name, strength_model, strength_clip, enabled)",
			    from, f->string);
	}
	f = cJSON_GetObjectItemCaseSensitive(v, "enabled");
	if (f != NULL && !cJSON_IsBool(f))
		ERR_OUT("%s.enabled: must be true or false", from);
	if (cJSON_IsFalse(f))
		return (0);
	f = cJSON_GetObjectItemCaseSensitive(v, "name");
	if (!cJSON_IsString(f))
		ERR_OUT("%s.name: must be a string", from);
	if (strlen(f->valuestring) >= sizeof buf)
		ERR_OUT("%s.name: over %zu bytes", from, sizeof buf - 1);
	snprintf(buf, sizeof buf, "%s", f->valuestring);
	f = cJSON_GetObjectItemCaseSensitive(v, "strength_model");
	if (f != NULL && !cJSON_IsNumber(f))
		ERR_OUT("%s.strength_model: must be a number", from);
	sm = f != NULL ? f->valuedouble : 1.0;
	f = cJSON_GetObjectItemCaseSensitive(v, "strength_clip");
	if (f != NULL && !cJSON_IsNumber(f))
		ERR_OUT("%s.strength_clip: must be a number", from);
	sc = f != NULL ? f->valuedouble : sm;
	return (lora_add(ll, from, buf, sm, sc, err, errlen));
}

/* Parses the job's "loras" array (job.c checked its shape) into ll. */
int
lora_parse_list(
    const cJSON *loras, struct lora_list *ll, char *err, size_t errlen)
{
	const cJSON *v;
	char	     from[32];
	int	     i = 0;

	cJSON_ArrayForEach(v, loras) {
		snprintf(from, sizeof from, "loras[%d]", i++);
		if (lora_parse_entry(v, from, ll, err, errlen) == -1)
			return (-1);
	}
	return (0);
}

/*
 * Parses one tag starting at s ("<lora:..."): 1 and its length in *len
 * when it is a tag (added to ll, or -1 for a refused one), 0 when it is
 * ordinary text.
 */
static int
lora_tag(const char *s, const char *field, struct lora_list *ll, size_t *len,
    char *err, size_t errlen)
{
	const char *end;
	char	    body[LORA_NAME_MAX + 64], from[128], *name, *colon, *e;
	double	    sm, sc;

	if (strncasecmp(s, "<lora:", 6) != 0)
		return (0);
	end = strpbrk(s + 6, "<>\n");
	if (end == NULL || *end != '>' ||
	    (size_t)(end - (s + 6)) >= sizeof body)
		return (0);
	memcpy(body, s + 6, (size_t)(end - (s + 6)));
	body[end - (s + 6)] = '\0';
	if ((colon = strchr(body, ':')) != NULL)
		*colon++ = '\0';
	for (name = body; isspace((unsigned char)*name); name++)
		;
	for (e = name + strlen(name);
	     e > name && isspace((unsigned char)e[-1]);)
		*--e = '\0';
	if (!lora_name_ok(name) || lora_parse_weights(colon, &sm, &sc) == -1)
		return (0);
	*len = (size_t)(end - s) + 1;
	snprintf(from, sizeof from, "%s: <lora:%.*s>", field,
	    (int)(end - (s + 6)), s + 6);
	return (lora_add(ll, from, name, sm, sc, err, errlen) == -1 ? -1 : 1);
}

/*
 * Finds LoRA tags in text (a NUL-terminated string edited in place), adds
 * them to ll, and cuts them out with the blank space they leave. field
 * names the text in errors ("prompt"). Returns the number of tags, or -1.
 */
int
lora_parse_tags(char *text, const char *field, struct lora_list *ll, char *err,
    size_t errlen)
{
	char  *r = text, *w = text;
	size_t len;
	int    n = 0, rc, cut = 0;

	while (*r != '\0') {
		if (*r == '<' &&
		    (rc = lora_tag(r, field, ll, &len, err, errlen)) != 0) {
			if (rc == -1)
				return (-1);
			n++;
			r += len;
			/* Drop the blank the tag leaves between words. */
			if (w == text || isspace((unsigned char)w[-1]))
				while (*r == ' ' || *r == '\t')
					r++;
			cut = *r == '\0';
			continue;
		}
		*w++ = *r++;
	}
	while (cut && w > text && (w[-1] == ' ' || w[-1] == '\t'))
		w--;
	*w = '\0';
	return (n);
}

/* Checkpoint loader classes and where their MODEL and CLIP come out. */
static const struct {
	const char *class;
	int model, clip;
} lora_sources[] = {
	{ "CheckpointLoaderSimple", 0, 1 },
	{ "CheckpointLoader", 0, 1 },
	{ "ImageOnlyCheckpointLoader", 0, -1 },
	{ "UNETLoader", 0, -1 },
};

/* Finds the one checkpoint loader; returns its table index or -1. */
static int
lora_find_source(const cJSON *graph, const char **id, char *err, size_t errlen)
{
	const cJSON *node;
	const char  *ct;
	size_t	     i;
	int	     n = 0, which = -1;

	cJSON_ArrayForEach(node, graph) {
		if ((ct = graph_node_class(node)) == NULL)
			continue;
		for (i = 0; i < sizeof lora_sources / sizeof lora_sources[0];
		     i++) {
			if (strcmp(ct, lora_sources[i].class) != 0)
				continue;
			if (n++ > 0)
				ERR_OUT(
				    "loras: the graph has more than one checkpoint loader (nodes %s and %s)",
				    *id, node->string);
			*id = node->string;
			which = (int)i;
		}
	}
	if (which == -1)
		ERR_OUT("loras: the graph has no checkpoint loader");
	return (which);
}

/* Returns 1 when some input reads output (id, slot). */
static int
lora_consumed(const cJSON *graph, const char *id, int slot)
{
	const cJSON *node, *v;

	cJSON_ArrayForEach(node, graph) {
		cJSON_ArrayForEach(
		    v, cJSON_GetObjectItemCaseSensitive(node, "inputs")) {
			if (graph_link_is(v, id, slot))
				return (1);
		}
	}
	return (0);
}

/*
 * Inserts the LoRA chain for ll into graph, every strength multiplied by
 * scale. Returns 0 (nothing to do for an empty list), or -1 with err.
 */
int
lora_inject(cJSON *graph, const struct lora_list *ll, double scale, char *err,
    size_t errlen)
{
	const char *src = NULL;
	char	    ckpt[GRAPH_ID_MAX], prev[GRAPH_ID_MAX], id[GRAPH_ID_MAX];
	char	    first[GRAPH_ID_MAX];
	cJSON	   *in;
	int	    s, i, model, clip;

	if (ll->n == 0)
		return (0);
	if ((s = lora_find_source(graph, &src, err, errlen)) == -1)
		return (-1);
	if (strlen(src) >= sizeof ckpt)
		ERR_OUT("loras: node id '%.64s...' over %d bytes", src,
		    GRAPH_ID_MAX - 1);
	snprintf(ckpt, sizeof ckpt, "%s", src);
	model = lora_sources[s].model;
	clip = lora_sources[s].clip;
	if (clip != -1 && !lora_consumed(graph, ckpt, clip))
		clip = -1;
	snprintf(prev, sizeof prev, "%s", ckpt);
	for (i = 0; i < ll->n; i++) {
		const struct lora *l = &ll->l[i];

		in = graph_node_add(graph,
		    clip == -1 ? "LoraLoaderModelOnly" : "LoraLoader", id);
		graph_set_str(in, "lora_name", l->name);
		graph_set_num(in, "strength_model", l->strength_model * scale);
		graph_set(
		    in, "model", graph_link_new(prev, i == 0 ? model : 0));
		if (clip != -1) {
			graph_set_num(
			    in, "strength_clip", l->strength_clip * scale);
			graph_set(in, "clip",
			    graph_link_new(prev, i == 0 ? clip : 1));
		}
		if (i == 0)
			snprintf(first, sizeof first, "%s", id);
		snprintf(prev, sizeof prev, "%s", id);
	}
	graph_relink(graph, ckpt, model, prev, 0, first);
	if (clip != -1)
		graph_relink(graph, ckpt, clip, prev, 1, first);
	return (0);
}
