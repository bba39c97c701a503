/*
 * ComfyUI's classic output cache. A node's key is the signature of its
 * inputs: its class, IS_CHANGED (LoadImage: the SHA-256 of the file), each
 * input in name order, literals as JSON and links as the linked node's own
 * signature and slot. So an identical subgraph hits whatever its node ids
 * are. Like CacheKeySetInputSignature + HierarchicalCache in "classic"
 * mode, a new prompt drops every entry it does not use itself: the cache
 * serves consecutive prompts that share work, and a repeated identical
 * prompt is served whole, with the old UI outputs (file names). /free with
 * free_memory empties it; --cache-none disables it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "log.h"
#include "sim.h"
#include "util.h"
#include "xmalloc.h"

static struct omap *cache;
static EVP_MD	   *sha256; /* fetched once: an implicit fetch per node costs */

static EVP_MD_CTX *
cache_md_new(void)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (sha256 == NULL &&
	    (sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		fatalx("cache: no SHA-256");
	if (md == NULL || EVP_DigestInit_ex(md, sha256, NULL) != 1)
		fatalx("cache: cannot start a digest");
	return (md);
}

static void
cache_hash_file(const char *name, EVP_MD_CTX *md)
{
	char   path[8192], err[256];
	char  *data;
	size_t len;

	if (path_annotated(name, sim.input_dir, path, sizeof path) == 0 &&
	    (data = file_slurp(path, (size_t)1 << 30, &len, err, sizeof err)) !=
		NULL) {
		EVP_DigestUpdate(md, data, len);
		free(data);
		return;
	}
	/* IS_CHANGED failed: NaN in ComfyUI, which never matches. */
	{
		uint64_t r = rand_u64();

		EVP_DigestUpdate(md, &r, sizeof r);
	}
}

static int
cache_keycmp(const void *a, const void *b)
{
	return (
	    strcmp((*(cJSON *const *)a)->string, (*(cJSON *const *)b)->string));
}

/*
 * One signature being computed: the node, its inputs in name order, the one
 * it is at (linked: its name is hashed and its node's signature is being
 * computed above), and the digest so far. A stack of these stands for
 * recursion, so a chain of any length cannot overflow the C stack.
 */
struct sigframe {
	size_t	    i;
	cJSON	  **in;
	size_t	    n, j;
	int	    linked;
	EVP_MD_CTX *md;
};

/* Starts node i's signature in f. */
static void
cache_sig_enter(const struct graph *g, size_t i, struct sigframe *f, int *state)
{
	cJSON *it;

	memset(f, 0, sizeof *f);
	f->i = i;
	state[i] = 1;
	f->md = cache_md_new();
	EVP_DigestUpdate(
	    f->md, g->v[i].cls->name, strlen(g->v[i].cls->name) + 1);
	cJSON_ArrayForEach(it, g->v[i].inputs) {
		f->in = xrealloc(f->in, (f->n + 1) * sizeof *f->in);
		f->in[f->n++] = it;
	}
	if (f->n > 1)
		qsort(f->in, f->n, sizeof *f->in, cache_keycmp);
}

/* Ends f: the hex digest goes into sigs[f->i]. */
static void
cache_sig_leave(struct sigframe *f, char (*sigs)[SIG_LEN], int *state)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char	  d[EVP_MAX_MD_SIZE];
	unsigned int	  dlen, k;

	EVP_DigestFinal_ex(f->md, d, &dlen);
	EVP_MD_CTX_free(f->md);
	free(f->in);
	for (k = 0; k < 32 && k < dlen; k++) {
		sigs[f->i][2 * k] = hex[d[k] >> 4];
		sigs[f->i][2 * k + 1] = hex[d[k] & 15];
	}
	sigs[f->i][64] = '\0';
	state[f->i] = 2;
}

/* Hashes input f->in[f->j] as a literal. */
static void
cache_sig_literal(const struct graph *g, struct sigframe *f)
{
	const cJSON *in = f->in[f->j];
	char	    *text = json_print(in, NULL);

	EVP_DigestUpdate(f->md, "V", 1);
	EVP_DigestUpdate(f->md, text, strlen(text) + 1);
	if (g->v[f->i].cls->kind == NK_LOAD_IMAGE &&
	    strcmp(in->string, "image") == 0 && cJSON_IsString(in))
		cache_hash_file(in->valuestring, f->md);
	free(text);
}

/*
 * Signature of node i and of every node it links to; state: 0 new, 1 in
 * progress (a link back to one is hashed as a literal), 2 done. Each input
 * gives its name, then "L", the linked node's signature and the slot, or
 * "V" and the value as JSON.
 */
static void
cache_sig(const struct graph *g, size_t i, char (*sigs)[SIG_LEN], int *state)
{
	struct sigframe *st, *f;
	const char	*src, *name;
	size_t		 sp = 0;
	int		 slot, s;

	if (state[i] == 2)
		return;
	st = xcalloc(g->n, sizeof *st);
	cache_sig_enter(g, i, &st[sp++], state);
	while (sp > 0) {
		f = &st[sp - 1];
		if (f->j == f->n) {
			cache_sig_leave(f, sigs, state);
			sp--;
			continue;
		}
		name = f->in[f->j]->string;
		if (!f->linked)
			EVP_DigestUpdate(f->md, name, strlen(name) + 1);
		if (graph_link(f->in[f->j], &src, &slot) &&
		    (s = graph_find(g, src)) >= 0 && state[s] != 1) {
			if (state[s] == 0) {
				f->linked = 1;
				cache_sig_enter(g, (size_t)s, &st[sp++], state);
				continue;
			}
			EVP_DigestUpdate(f->md, "L", 1);
			EVP_DigestUpdate(f->md, sigs[s], SIG_LEN);
			EVP_DigestUpdate(f->md, &slot, sizeof slot);
		} else
			cache_sig_literal(g, f);
		f->linked = 0;
		f->j++;
	}
	free(st);
}

/* Computes every node's key and drops the entries this prompt lacks. */
void
cache_set_prompt(const struct graph *g, char (*sigs)[SIG_LEN])
{
	struct omap	*keep = omap_new();
	struct omap_ent *e, *next;
	int		*state = xcalloc(g->n + 1, sizeof *state);
	size_t		 i;

	if (cache == NULL)
		cache = omap_new();
	for (i = 0; i < g->n; i++) {
		cache_sig(g, i, sigs, state);
		omap_put(keep, sigs[i], cache);
	}
	for (e = omap_first(cache); e != NULL; e = next) {
		next = omap_next(e);
		if (omap_get(keep, omap_key(e)) == NULL)
			result_unref(omap_del(cache, omap_key(e)));
	}
	omap_free(keep, NULL);
	free(state);
}

struct node_result *
cache_get(const char *sig)
{
	return (cache != NULL ? omap_get(cache, sig) : NULL);
}

/* Keeps r (a new reference) under sig, unless caching is off. */
void
cache_put(const char *sig, struct node_result *r)
{
	if (sim.cfg.cache_none)
		return;
	if (cache == NULL)
		cache = omap_new();
	result_unref(omap_put(cache, sig, result_ref(r)));
}

static void
cache_unref(void *p)
{
	result_unref(p);
}

void
cache_reset(void)
{
	omap_free(cache, cache_unref);
	cache = NULL;
	EVP_MD_free(sha256);
	sha256 = NULL;
}
