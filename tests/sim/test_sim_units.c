/*
 * The sim's pieces that must give exactly what they replace, tested on
 * their own (sim/json.c, sim/png.c, sim/paths.c compiled in):
 *   json_print    byte for byte cJSON_PrintUnformatted, on fixed trees and
 *                 on random ones (numbers of every kind, escapes, UTF-8);
 *   png_encode    the bytes stb_image_write makes, on a miss, on a hit
 *                 and after eviction, for pictures that differ in one byte;
 *   path_norm     what the sim's earlier strtok/snprintf version gave (kept
 *                 here as the reference), on random paths;
 *   path_mkdirs   1 for a folder it made, 0 for one that was there, -1 and
 *                 errno as the walk from the root gave them (ENOTDIR
 *                 under a file).
 */
#include <sys/stat.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb/stb_image_write.h>

#include "../integration/itest.h"
#include "sim.h"
#include "xmalloc.h"

struct sim sim; /* paths.c's annotations read it; unused here */

static void
same_print(const cJSON *j)
{
	char  *a = cJSON_PrintUnformatted(j), *b;
	size_t n = 0;

	b = json_print(j, &n);
	ASSERT_TRUE(a != NULL && b != NULL);
	ASSERT_STREQ(b, a);
	ASSERT_EQ(n, strlen(a));
	free(a);
	free(b);
}

static void
test_json_fixed(void)
{
	static const char *const docs[] = { "{}", "[]", "null", "true", "0",
		"-0", "1e300", "-1e-300", "0.1", "123456789012345",
		"999999999999999", "1000000000000000", "-1000000000000001",
		"2147483647", "2147483648", "-2147483648", "-2147483649",
		"1796276392508", "3.5", "1.7976931348623157e308", "5e-324",
		"[1,2.5,[],{}]",
		"{\"a\":{\"b\":[null,false,\"x\\u0001\\u001f\\t\\n\\r\\b\\f"
		"\\\\\\\"/\\u00e9\\u2028\\ud83d\\ude00\"]}}",
		"{\"\":\"\",\"k\\u0000\":1}",
		"{\"type\":\"executing\",\"data\":{\"node\":null,"
		"\"display_node\":null,\"prompt_id\":\"abc\"}}" };
	size_t			 i;
	cJSON			*j;

	for (i = 0; i < sizeof docs / sizeof docs[0]; i++) {
		ASSERT_TRUE((j = cJSON_Parse(docs[i])) != NULL);
		same_print(j);
		cJSON_Delete(j);
	}
	/* values cJSON never parses to: NaN, infinities, raw text, -0.0 */
	j = cJSON_CreateArray();
	cJSON_AddItemToArray(j, cJSON_CreateNumber(NAN));
	cJSON_AddItemToArray(j, cJSON_CreateNumber(INFINITY));
	cJSON_AddItemToArray(j, cJSON_CreateNumber(-INFINITY));
	cJSON_AddItemToArray(j, cJSON_CreateNumber(-0.0));
	cJSON_AddItemToArray(j, cJSON_CreateRaw("{\"raw\": 1}"));
	cJSON_AddItemToArray(j, cJSON_CreateString(""));
	same_print(j);
	cJSON_Delete(j);
}

static uint64_t rng = 88172645463325252ULL;

static uint64_t
next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (rng);
}

static double
rand_number(void)
{
	double d;

	switch (next() % 8) {
	case 0:
		return ((double)(int64_t)(next() % 2000001) - 1000000);
	case 1:
		return ((double)(int64_t)next() / 1024.0);
	case 2:
		return ((double)(next() % 100000) / 100.0);
	case 3: /* integers around 1e15 and 2^31, either side */
		return ((next() & 1 ? 1e15 : 2147483648.0) +
		    (double)(int64_t)(next() % 5) - 2);
	case 4:
		memcpy(&d, &(uint64_t){ next() }, sizeof d);
		return (d); /* any bit pattern: NaN, subnormals, ... */
	case 5:
		return (1796276392508.0 + (double)(next() % 1000));
	case 6:
		return (-(double)(next() % 1000000000000000ULL));
	default:
		return (
		    ldexp((double)(next() % 1000), (int)(next() % 200) - 100));
	}
}

static char *
rand_string(char *buf, size_t len)
{
	static const char *const bits[] = { "a", "\"", "\\", "\n", "\x01",
		"\x1f", " ", "\xc3\xa9", "\xe2\x80\xa8", "\x7f", "/", "\t",
		"\b", "\f", "\r", "node", "\xff" };
	size_t			 n = next() % 12, i;

	buf[0] = '\0';
	for (i = 0; i < n; i++)
		strncat(buf, bits[next() % (sizeof bits / sizeof bits[0])],
		    len - strlen(buf) - 1);
	return (buf);
}

static cJSON *
rand_tree(int depth)
{
	char   s[128], k[128];
	cJSON *j;
	int    n, i;

	switch (depth > 4 ? next() % 5 : next() % 7) {
	case 0:
		return (cJSON_CreateNull());
	case 1:
		return (cJSON_CreateBool(next() & 1));
	case 2:
	case 3:
		return (cJSON_CreateNumber(rand_number()));
	case 4:
		return (cJSON_CreateString(rand_string(s, sizeof s)));
	case 5:
		j = cJSON_CreateArray();
		for (n = (int)(next() % 5), i = 0; i < n; i++)
			cJSON_AddItemToArray(j, rand_tree(depth + 1));
		return (j);
	default:
		j = cJSON_CreateObject();
		for (n = (int)(next() % 5), i = 0; i < n; i++)
			cJSON_AddItemToObject(
			    j, rand_string(k, sizeof k), rand_tree(depth + 1));
		return (j);
	}
}

static void
test_json_random(void)
{
	cJSON *j;
	int    i;

	for (i = 0; i < 3000; i++) {
		j = rand_tree(0);
		same_print(j);
		cJSON_Delete(j);
	}
}

struct buf {
	unsigned char *p;
	size_t	       len;
};

static void
buf_add(void *ctx, void *data, int size)
{
	struct buf *b = ctx;

	b->p = xrealloc(b->p, b->len + (size_t)size);
	memcpy(b->p + b->len, data, (size_t)size);
	b->len += (size_t)size;
}

/* png_encode's bytes against stb's own, for one picture. */
static void
same_png(const unsigned char *px, int w, int h, int level)
{
	struct buf     want = { NULL, 0 };
	unsigned char *got = NULL;
	size_t	       len = 0;

	stbi_write_png_compression_level = level;
	ASSERT_TRUE(
	    stbi_write_png_to_func(buf_add, &want, w, h, 3, px, w * 3) != 0);
	ASSERT_EQ(png_encode(px, w, h, level, &got, &len), 0);
	ASSERT_EQ(len, want.len);
	ASSERT_TRUE(memcmp(got, want.p, len) == 0);
	free(got);
	free(want.p);
}

static void
test_png_cache(void)
{
	unsigned char *a = xmalloc(64 * 64 * 3), *b = xmalloc(64 * 64 * 3);
	unsigned char *big;
	size_t	       i;
	int	       k;

	for (i = 0; i < 64 * 64 * 3; i++)
		a[i] = (unsigned char)(i * 7 + i / 192);
	memcpy(b, a, 64 * 64 * 3);
	b[64 * 64 * 3 - 1] ^= 1; /* one byte apart */
	for (k = 0; k < 3; k++) {
		same_png(a, 64, 64, 4); /* a miss, then hits */
		same_png(b, 64, 64, 4);
		same_png(a, 64, 64, 1);	 /* the level is in the key */
		same_png(a, 32, 128, 4); /* so are the sides */
		same_png(a, 8, 8, 4);
	}
	/* more pictures than the cache holds: the first ones come back */
	for (k = 0; k < 40; k++) {
		a[0] = (unsigned char)k;
		same_png(a, 64, 64, 4);
	}
	for (k = 0; k < 40; k++) {
		a[0] = (unsigned char)k;
		same_png(a, 64, 64, 4);
	}
	/* larger than an entry may be: encoded every time */
	big = xcalloc(1, 1400 * 1100 * 3);
	big[12345] = 9;
	same_png(big, 1400, 1100, 4);
	same_png(big, 1400, 1100, 4);
	png_reset();
	same_png(b, 64, 64, 4);
	png_reset();
	free(big);
	free(a);
	free(b);
}

/* path_norm as it was before it was made one pass: the reference. */
static void
norm_ref(const char *in, char *out, size_t len)
{
	char  *buf = xstrdup(in), *tok, *save;
	char **parts = NULL;
	size_t n = 0, i, o = 0;
	int    abs = in[0] == '/';

	for (tok = strtok_r(buf, "/", &save); tok != NULL;
	     tok = strtok_r(NULL, "/", &save)) {
		if (strcmp(tok, ".") == 0)
			continue;
		if (strcmp(tok, "..") == 0 && n > 0 &&
		    strcmp(parts[n - 1], "..") != 0) {
			n--;
			continue;
		}
		if (strcmp(tok, "..") == 0 && abs)
			continue;
		parts = xrealloc(parts, (n + 1) * sizeof *parts);
		parts[n++] = tok;
	}
	out[0] = '\0';
	if (abs)
		o = (size_t)snprintf(out, len, "/");
	for (i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(
		    out + o, len - o, "%s%s", i ? "/" : "", parts[i]);
	if (out[0] == '\0')
		snprintf(out, len, ".");
	free(parts);
	free(buf);
}

static void
test_norm(void)
{
	static const char *const bits[] = { "a", "b", "..", ".", "", "/", "//",
		"x.y", "...", ".a", "a.." };
	char			 in[256], want[256], got[256];
	size_t			 i, n;
	int			 k;

	for (k = 0; k < 20000; k++) {
		in[0] = '\0';
		if (next() & 1)
			strcat(in, "/");
		for (n = next() % 9, i = 0; i < n; i++) {
			if (i > 0)
				strcat(in, "/");
			strcat(
			    in, bits[next() % (sizeof bits / sizeof bits[0])]);
		}
		norm_ref(in, want, sizeof want);
		path_norm(in, got, sizeof got);
		ASSERT_STREQ(got, want);
	}
	path_norm("/a/b/../../../c/./d//", got, sizeof got);
	ASSERT_STREQ(got, "/c/d");
	path_norm("../a/../../b", got, sizeof got);
	ASSERT_STREQ(got, "../../b");
	path_norm("", got, sizeof got);
	ASSERT_STREQ(got, ".");
}

static void
test_mkdirs(void)
{
	char  dir[] = "/tmp/comfyq-simunits.XXXXXX", p[256], f[256];
	FILE *fp;

	ASSERT_TRUE(mkdtemp(dir) != NULL);
	snprintf(p, sizeof p, "%s/a/b/c", dir);
	ASSERT_EQ(path_mkdirs(p), 1);
	ASSERT_EQ(path_mkdirs(p), 0);
	snprintf(p, sizeof p, "%s/a/b/d", dir);
	ASSERT_EQ(path_mkdirs(p), 1);
	snprintf(p, sizeof p, "%s/a", dir);
	ASSERT_EQ(path_mkdirs(p), 0);
	snprintf(p, sizeof p, "%s/a/b/e/", dir);
	ASSERT_EQ(path_mkdirs(p), 1);
	/* under a file: ENOTDIR; the file itself: "there" (EEXIST) */
	snprintf(f, sizeof f, "%s/file", dir);
	ASSERT_TRUE((fp = fopen(f, "w")) != NULL);
	fclose(fp);
	snprintf(p, sizeof p, "%s/file/x/y", dir);
	errno = 0;
	ASSERT_EQ(path_mkdirs(p), -1);
	ASSERT_EQ(errno, ENOTDIR);
	ASSERT_EQ(path_mkdirs(f), 0);
	unlink(f);
	snprintf(p, sizeof p, "%s/a/b/e", dir);
	rmdir(p);
	snprintf(p, sizeof p, "%s/a/b/d", dir);
	rmdir(p);
	snprintf(p, sizeof p, "%s/a/b/c", dir);
	rmdir(p);
	snprintf(p, sizeof p, "%s/a/b", dir);
	rmdir(p);
	snprintf(p, sizeof p, "%s/a", dir);
	rmdir(p);
	ASSERT_EQ(rmdir(dir), 0);
}

const struct unit_test itests[] = {
	{ "json_fixed", test_json_fixed },
	{ "json_random", test_json_random },
	{ "png_cache", test_png_cache },
	{ "norm", test_norm },
	{ "mkdirs", test_mkdirs },
	{ NULL, NULL },
};
