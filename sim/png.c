/*
 * PNG encoding of rendered pixels, with a cache of encoded files. The sim
 * draws the same pictures again and again (a no-op EmptyImage is one solid
 * colour for every job), and stb_image_write's deflate costs most of a
 * small prompt's CPU (its hash table alone is a 64 KiB calloc per image).
 * The encoder is a pure function of (pixels, width, height, compression
 * level), so an entry keyed by exactly those, the pixels compared byte for
 * byte on a hit, gives the bytes stb would write again.
 *
 * The cache holds at most PNG_CACHE_ENTRIES pictures of at most
 * PNG_CACHE_PIXBYTES raw bytes each (larger ones are encoded every time),
 * PNG_CACHE_BYTES in all; a new entry pushes out the oldest (a ring), a
 * hit costs a hash and a memcmp of the pixels. png_reset() empties it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image_write.h>

#include "sim.h"
#include "xmalloc.h"

#define PNG_CACHE_ENTRIES  16
#define PNG_CACHE_PIXBYTES (4u << 20)
#define PNG_CACHE_BYTES	   (32u << 20)

struct png_ent {
	uint64_t       hash;
	int	       w, h, level;
	unsigned char *px; /* w * h * 3 bytes */
	unsigned char *png;
	size_t	       len;
};

static struct png_ent ring[PNG_CACHE_ENTRIES];
static size_t	      ring_next, ring_bytes;

/* FNV-1a over 8 bytes at a time: cheap, and a hit is verified anyway. */
static uint64_t
png_hash(const unsigned char *p, size_t n, int w, int h, int level)
{
	uint64_t x = 0xcbf29ce484222325ULL ^
	    ((uint64_t)(uint32_t)w << 32 | (uint32_t)h) ^ (uint64_t)level << 56;
	uint64_t v;
	size_t	 i;

	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&v, p + i, 8);
		x = (x ^ v) * 0x100000001b3ULL;
		x ^= x >> 29;
	}
	for (; i < n; i++)
		x = (x ^ p[i]) * 0x100000001b3ULL;
	return (x);
}

/* stb's write callback: appends size bytes to the membuf ctx. */
void
membuf_add(void *ctx, void *data, int size)
{
	struct membuf *b = ctx;

	if (b->len + (size_t)size > b->cap) {
		b->cap = (b->len + (size_t)size) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, data, (size_t)size);
	b->len += (size_t)size;
}

static void
png_drop(struct png_ent *e)
{
	ring_bytes -= e->len + (e->px != NULL ? (size_t)e->w * e->h * 3 : 0);
	free(e->px);
	free(e->png);
	memset(e, 0, sizeof *e);
}

/*
 * The PNG stb_image_write makes of w x h RGB pixels at this compression
 * level, into a new buffer (*out, *len; the caller frees it). Returns 0,
 * or -1 when stb fails.
 */
int
png_encode(const unsigned char *px, int w, int h, int level,
    unsigned char **out, size_t *len)
{
	size_t		n = (size_t)w * (size_t)h * 3, i;
	uint64_t	hash = 0;
	struct membuf	b;
	struct png_ent *e;
	int		cacheable = n <= PNG_CACHE_PIXBYTES;

	if (cacheable) {
		hash = png_hash(px, n, w, h, level);
		for (i = 0; i < PNG_CACHE_ENTRIES; i++) {
			e = &ring[i];
			if (e->png != NULL && e->hash == hash && e->w == w &&
			    e->h == h && e->level == level &&
			    memcmp(e->px, px, n) == 0) {
				*out = xmalloc(e->len);
				memcpy(*out, e->png, e->len);
				*len = e->len;
				return (0);
			}
		}
	}
	memset(&b, 0, sizeof b);
	stbi_write_png_compression_level = level;
	if (!stbi_write_png_to_func(membuf_add, &b, w, h, 3, px, w * 3)) {
		free(b.p);
		return (-1);
	}
	*out = b.p;
	*len = b.len;
	if (!cacheable || n + b.len > PNG_CACHE_BYTES)
		return (0);
	while (ring_bytes + n + b.len > PNG_CACHE_BYTES) {
		/* the oldest go first until it fits */
		for (i = 0;
		     ring[ring_next].png == NULL && i < PNG_CACHE_ENTRIES; i++)
			ring_next = (ring_next + 1) % PNG_CACHE_ENTRIES;
		png_drop(&ring[ring_next]);
	}
	e = &ring[ring_next];
	if (e->png != NULL)
		png_drop(e);
	e->hash = hash;
	e->w = w;
	e->h = h;
	e->level = level;
	e->px = xmalloc(n);
	memcpy(e->px, px, n);
	e->png = xmalloc(b.len);
	memcpy(e->png, b.p, b.len);
	e->len = b.len;
	ring_bytes += n + b.len;
	ring_next = (ring_next + 1) % PNG_CACHE_ENTRIES;
	return (0);
}

void
png_reset(void)
{
	size_t i;

	for (i = 0; i < PNG_CACHE_ENTRIES; i++)
		if (ring[i].png != NULL)
			png_drop(&ring[i]);
	ring_next = 0;
}
