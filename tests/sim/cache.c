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

#include "sim.h"
#include "util.h"
#include "xmalloc.h"

static struct omap *cache;

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

/* Signature of node i; state: 0 new, 1 in progress, 2 done. */
static void
cache_sig(const struct graph *g, size_t i, char (*sigs)[SIG_LEN], int *state)
{
	static const char hex[] = "0123456789abcdef";
	EVP_MD_CTX	 *md;
	unsigned char	  d[EVP_MAX_MD_SIZE];
	unsigned int	  dlen, k;
	cJSON		**in = NULL, *it;
	const char	 *src;
	char		 *text;
	size_t		  n = 0, j;
	int		  slot, s;

	if (state[i] == 2)
		return;
	state[i] = 1;
	md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, g->v[i].cls->name, strlen(g->v[i].cls->name) + 1);
	cJSON_ArrayForEach(it, g->v[i].inputs)
	{
		in = xrealloc(in, (n + 1) * sizeof *in);
		in[n++] = it;
	}
	if (n > 1)
		qsort(in, n, sizeof *in, cache_keycmp);
	for (j = 0; j < n; j++) {
		EVP_DigestUpdate(md, in[j]->string, strlen(in[j]->string) + 1);
		if (graph_link(in[j], &src, &slot) &&
		    (s = graph_find(g, src)) >= 0 && state[s] != 1) {
			cache_sig(g, (size_t)s, sigs, state);
			EVP_DigestUpdate(md, "L", 1);
			EVP_DigestUpdate(md, sigs[s], SIG_LEN);
			EVP_DigestUpdate(md, &slot, sizeof slot);
			continue;
		}
		text = cJSON_PrintUnformatted(in[j]);
		EVP_DigestUpdate(md, "V", 1);
		EVP_DigestUpdate(md, text, strlen(text) + 1);
		if (g->v[i].cls->kind == NK_LOAD_IMAGE &&
		    strcmp(in[j]->string, "image") == 0 &&
		    cJSON_IsString(in[j]))
			cache_hash_file(in[j]->valuestring, md);
		free(text);
	}
	free(in);
	EVP_DigestFinal_ex(md, d, &dlen);
	EVP_MD_CTX_free(md);
	for (k = 0; k < 32 && k < dlen; k++) {
		sigs[i][2 * k] = hex[d[k] >> 4];
		sigs[i][2 * k + 1] = hex[d[k] & 15];
	}
	sigs[i][64] = '\0';
	state[i] = 2;
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
}
