/*
 * Output files, named as ComfyUI names them. SaveImage, PreviewImage and
 * SaveAnimatedWEBP use folder_paths.get_save_image_path(): %width% style
 * variables, a prefix whose directory part becomes the subfolder (and may
 * not leave the output directory), and <prefix>_<counter:05>_.<ext> with
 * the counter one above the highest existing one. VHS_VideoCombine counts
 * its own way (<prefix>_<counter:05>.<ext>) and writes a first-frame PNG
 * beside the video. The counter is found by scanning the folder once (not
 * at all when the sim has just made the folder), then kept in memory; a
 * name taken meanwhile is detected (O_EXCL) and the folder scanned again.
 *
 * Pixels are deterministic: a solid colour (EmptyImage), a pattern drawn
 * from the seed of the node that made the image (a sampler's signature, so
 * seed and prompt decide it), or a loaded file, scaled by nearest
 * neighbour. PNGs are real (stb_image_write, through png.c's cache).
 * Videos and WEBPs are files with the right magic bytes and a plausible
 * size (MP4: about 80 KB per second), since a worker checks names, types
 * and sizes, not codecs.
 *
 * Two faults shape the files: huge_png writes a black PNG that declares
 * 16384x16384 (see out_huge_png), and same_name gives every image one name,
 * each in a subfolder of its own (<subfolder>/<counter>/<name>), so a
 * prompt's files share a name, as custom save nodes can make them.
 */
#include <sys/stat.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <stb/stb_image.h>

#include "log.h"
#include "sim.h"
#include "util.h"
#include "xmalloc.h"

#define OUT_MAX_PIXELS	 (64u << 20) /* refuse larger renders */
#define MP4_BYTES_PER_S	 (80 * 1024)
#define VIDEO_MIN_BYTES	 (16 * 1024)
#define VIDEO_TINY_BYTES 2048
#define HUGE_SIDE	 16384

struct save_path {
	char folder[PATH_MAX];
	char filename[1024];
	char subfolder[1024];
	int  counter;
	char key[PATH_MAX + 1100];
};

static struct omap *counters; /* folder + name + style -> next counter */

static void
out_replace(char *s, size_t len, const char *var, const char *val)
{
	char  *p, tmp[1024];
	size_t vl = strlen(var);

	while ((p = strstr(s, var)) != NULL) {
		snprintf(
		    tmp, sizeof tmp, "%.*s%s%s", (int)(p - s), s, val, p + vl);
		snprintf(s, len, "%s", tmp);
	}
}

/* ComfyUI's compute_vars(): %width% %height% %year% ... */
static void
out_vars(char *s, size_t len, int w, int h)
{
	struct tm tm;
	time_t	  now = time(NULL);
	char	  v[32];

	if (strchr(s, '%') == NULL)
		return;
	localtime_r(&now, &tm);
	snprintf(v, sizeof v, "%d", w);
	out_replace(s, len, "%width%", v);
	snprintf(v, sizeof v, "%d", h);
	out_replace(s, len, "%height%", v);
	snprintf(v, sizeof v, "%d", tm.tm_year + 1900);
	out_replace(s, len, "%year%", v);
	snprintf(v, sizeof v, "%02d", tm.tm_mon + 1);
	out_replace(s, len, "%month%", v);
	snprintf(v, sizeof v, "%02d", tm.tm_mday);
	out_replace(s, len, "%day%", v);
	snprintf(v, sizeof v, "%02d", tm.tm_hour);
	out_replace(s, len, "%hour%", v);
	snprintf(v, sizeof v, "%02d", tm.tm_min);
	out_replace(s, len, "%minute%", v);
	snprintf(v, sizeof v, "%02d", tm.tm_sec);
	out_replace(s, len, "%second%", v);
}

/* The counter a file name carries for this prefix, or 0. */
#define OUT_COMFY 0 /* name_00001_.png, counted from the folder */
#define OUT_VHS	  1 /* name_00001.mp4, VideoHelperSuite's count */
#define OUT_FRESH 2 /* a random new prefix: starts at 1 */

static int
out_file_counter(const char *f, const char *name, int vhs)
{
	size_t n = strlen(name);
	char  *end;
	long   c;

	if (strncmp(f, name, n) != 0 || f[n] != '_')
		return (0);
	c = strtol(f + n + 1, &end, 10);
	if (end == f + n + 1 || c < 0 || c > INT_MAX)
		return (0);
	if (vhs != OUT_VHS)
		return (*end == '_' || *end == '\0' ? (int)c : 0);
	/* VHS: name_(\d+)\D*\.[a-zA-Z0-9]+ */
	while (*end != '\0' && *end != '.' && !isdigit((unsigned char)*end))
		end++;
	if (*end != '.' || end[1] == '\0')
		return (0);
	for (end++; *end != '\0'; end++)
		if (!isalnum((unsigned char)*end))
			return (0);
	return ((int)c);
}

static int
out_scan(const char *folder, const char *name, int vhs)
{
	DIR	      *d;
	struct dirent *de;
	int	       max = 0, c;

	if ((d = opendir(folder)) == NULL)
		return (1);
	while ((de = readdir(d)) != NULL)
		if ((c = out_file_counter(de->d_name, name, vhs)) > max)
			max = c;
	closedir(d);
	return (max + 1);
}

/* get_save_image_path(); vhs: OUT_COMFY, OUT_VHS or OUT_FRESH. */
static int
out_save_path(const char *root, const char *prefix, int w, int h, int vhs,
    struct save_path *sp, struct pyexc *exc)
{
	char p[1024], np[1024], *slash;
	int *next, made;

	snprintf(p, sizeof p, "%s", prefix);
	out_vars(p, sizeof p, w, h);
	path_norm(p, np, sizeof np);
	if ((slash = strrchr(np, '/')) != NULL) {
		snprintf(sp->subfolder, sizeof sp->subfolder, "%.*s",
		    (int)(slash - np), np);
		snprintf(sp->filename, sizeof sp->filename, "%s", slash + 1);
	} else {
		sp->subfolder[0] = '\0';
		snprintf(sp->filename, sizeof sp->filename, "%s", np);
	}
	path_join(root, sp->subfolder, sp->folder, sizeof sp->folder);
	if (!path_inside(root, sp->folder)) {
		py_exc(exc, "Exception",
		    "**** ERROR: Saving image outside the output folder is not "
		    "allowed.\n full_output_folder: %s\n         output_dir: "
		    "%s\n         commonpath: /",
		    sp->folder, root);
		return (-1);
	}
	if ((made = path_mkdirs(sp->folder)) == -1) {
		py_exc(exc, "OSError", "[Errno %d] %s: '%s'", errno,
		    strerror(errno), sp->folder);
		return (-1);
	}
	snprintf(sp->key, sizeof sp->key, "%s\x01%s\x01%d", sp->folder,
	    sp->filename, vhs);
	if (vhs == OUT_FRESH) {
		/* a random prefix (PreviewImage): nothing to scan or keep */
		sp->counter = 1;
		return (0);
	}
	if (counters == NULL)
		counters = omap_new();
	if ((next = omap_get(counters, sp->key)) == NULL) {
		next = xmalloc(sizeof *next);
		/* a folder made just now is empty: nothing to scan */
		*next = made ? 1 : out_scan(sp->folder, sp->filename, vhs);
		omap_put(counters, sp->key, next);
	}
	sp->counter = *next;
	return (0);
}

static void
out_used(struct save_path *sp, int upto)
{
	int *next = counters != NULL ? omap_get(counters, sp->key) : NULL;

	if (next != NULL && upto + 1 > *next)
		*next = upto + 1;
}

/* Writes a new file; EEXIST means another writer took the name. */
static int
out_write(const char *path, const void *data, size_t len, struct pyexc *exc)
{
	int	fd;
	ssize_t n;
	size_t	off = 0;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) ==
	    -1) {
		py_exc(exc, "OSError", "[Errno %d] %s: '%s'", errno,
		    strerror(errno), path);
		return (errno == EEXIST ? 1 : -1);
	}
	while (off < len) {
		if ((n = write(fd, (const char *)data + off, len - off)) <= 0) {
			py_exc(exc, "OSError", "[Errno %d] %s: '%s'", errno,
			    strerror(errno), path);
			close(fd);
			return (-1);
		}
		off += (size_t)n;
	}
	close(fd);
	return (0);
}

/* Picks a free name for the counter, rescanning once on a clash. */
static int
out_claim(struct save_path *sp, const char *fmt_suffix, const char *ext,
    const void *data, size_t len, int vhs, char *name, size_t namelen,
    struct pyexc *exc)
{
	char path[PATH_MAX * 2];
	int  rc, tries;

	for (tries = 0; tries < 2; tries++) {
		snprintf(name, namelen, "%s_%05d%s.%s", sp->filename,
		    sp->counter, fmt_suffix, ext);
		snprintf(path, sizeof path, "%s/%s", sp->folder, name);
		if ((rc = out_write(path, data, len, exc)) != 1)
			return (rc);
		sp->counter = out_scan(sp->folder, sp->filename, vhs);
	}
	return (-1);
}

/* RGB pixels of image v, frame index; NULL when too large. */
static int
output_render(const struct value *v, int index, unsigned char **out, int black)
{
	size_t	       npx = (size_t)v->w * (size_t)v->h, i;
	unsigned char *px, *src = NULL;
	uint64_t s = v->seed * 0x9e3779b97f4a7c15ULL + (uint64_t)index + 1;
	int	 x, y, sw = 0, sh = 0, n;

	if (v->w <= 0 || v->h <= 0 || npx > OUT_MAX_PIXELS)
		return (-1);
	if ((px = calloc(npx, 3)) == NULL)
		return (-1);
	*out = px;
	if (black)
		return (0);
	if (v->path != NULL)
		src = stbi_load(v->path, &sw, &sh, &n, 3);
	for (y = 0; y < v->h; y++) {
		for (x = 0; x < v->w; x++) {
			unsigned char *p = px + ((size_t)y * v->w + x) * 3;

			if (v->solid) {
				p[0] = (unsigned char)(v->rgb >> 16);
				p[1] = (unsigned char)(v->rgb >> 8);
				p[2] = (unsigned char)v->rgb;
			} else if (src != NULL) {
				unsigned char *q = src +
				    ((size_t)(y * sh / v->h) * sw +
					(size_t)(x * sw / v->w)) *
					3;

				memcpy(p, q, 3);
			} else {
				p[0] =
				    (unsigned char)((s >> 8) + x * 160 / v->w);
				p[1] =
				    (unsigned char)((s >> 16) + y * 160 / v->h);
				p[2] = (unsigned char)((s >> 24) +
				    (((x >> 4) ^ (y >> 4)) & 1) * 48);
			}
		}
	}
	stbi_image_free(src);
	if (v->invert)
		for (i = 0; i < npx * 3; i++)
			px[i] = (unsigned char)(255 - px[i]);
	return (0);
}

static void
out_put(struct membuf *b, const void *data, size_t len)
{
	membuf_add(b, (void *)(uintptr_t)data, (int)len);
}

static void
out_byte(struct membuf *b, unsigned char c)
{
	out_put(b, &c, 1);
}

static void
out_be32(struct membuf *b, uint32_t v)
{
	out_byte(b, (unsigned char)(v >> 24));
	out_byte(b, (unsigned char)(v >> 16));
	out_byte(b, (unsigned char)(v >> 8));
	out_byte(b, (unsigned char)v);
}

/* Deflate's bit order: n bits of v, least significant first. */
static void
out_bits(struct membuf *b, uint32_t *acc, int *nacc, uint32_t v, int n)
{
	*acc |= v << *nacc;
	*nacc += n;
	while (*nacc >= 8) {
		out_byte(b, (unsigned char)*acc);
		*acc >>= 8;
		*nacc -= 8;
	}
}

/* A Huffman code goes out most significant bit first. */
static void
out_code(struct membuf *b, uint32_t *acc, int *nacc, uint32_t code, int n)
{
	uint32_t r = 0;
	int	 i;

	for (i = 0; i < n; i++)
		r |= ((code >> i) & 1) << (n - 1 - i);
	out_bits(b, acc, nacc, r, n);
}

/* Appends a PNG chunk whose type and data are b->p[start..]. */
static void
out_chunk_end(struct membuf *b, size_t start)
{
	uint32_t crc = 0xffffffff;
	size_t	 i;
	int	 k;

	for (i = start; i < b->len; i++) {
		crc ^= b->p[i];
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320 & (0u - (crc & 1)));
	}
	out_be32(b, ~crc);
	/* the length goes before the type */
	b->p[start - 4] = (unsigned char)((b->len - start - 8) >> 24);
	b->p[start - 3] = (unsigned char)((b->len - start - 8) >> 16);
	b->p[start - 2] = (unsigned char)((b->len - start - 8) >> 8);
	b->p[start - 1] = (unsigned char)(b->len - start - 8);
}

/*
 * The huge_png fault: a valid PNG of HUGE_SIDE x HUGE_SIDE black RGB
 * pixels. Its zlib stream is one fixed-Huffman block: a zero byte, then
 * back-references of 258 bytes at distance 1 (13 bits each), so 768 MiB
 * of pixel rows take about 5 MB, and decoding them takes about 1.5 GB.
 */
static int
out_huge_png(struct membuf *b)
{
	const uint64_t raw = (uint64_t)HUGE_SIDE * (HUGE_SIDE * 3 + 1);
	uint64_t       i, copies = (raw - 1) / 258;
	uint32_t       acc = 0;
	size_t	       start;
	int	       nacc = 0;

	memset(b, 0, sizeof *b);
	out_put(b, "\x89PNG\r\n\x1a\n", 8);
	out_be32(b, 0);
	start = b->len;
	out_put(b, "IHDR", 4);
	out_be32(b, HUGE_SIDE);
	out_be32(b, HUGE_SIDE);
	out_put(b, "\x08\x02\x00\x00\x00", 5); /* 8-bit RGB */
	out_chunk_end(b, start);
	out_be32(b, 0);
	start = b->len;
	out_put(b, "IDAT\x78\x01", 6);
	out_bits(b, &acc, &nacc, 1, 1);	   /* the final block */
	out_bits(b, &acc, &nacc, 1, 2);	   /* fixed codes */
	out_code(b, &acc, &nacc, 0x30, 8); /* literal 0 */
	for (i = 0; i < copies; i++) {
		out_code(b, &acc, &nacc, 0xc5, 8); /* length 258 */
		out_code(b, &acc, &nacc, 0, 5);	   /* distance 1 */
	}
	for (i = 1 + copies * 258; i < raw; i++)
		out_code(b, &acc, &nacc, 0x30, 8);
	out_code(b, &acc, &nacc, 0, 7);			/* end of block */
	out_bits(b, &acc, &nacc, 0, 7);			/* to a byte boundary */
	out_be32(b, (uint32_t)(raw % 65521) << 16 | 1); /* adler32 */
	out_chunk_end(b, start);
	out_be32(b, 0);
	start = b->len;
	out_put(b, "IEND", 4);
	out_chunk_end(b, start);
	return (0);
}

static int
out_png(const struct value *v, int index, int level, int faults,
    struct membuf *b, struct pyexc *exc)
{
	unsigned char *px;

	if (faults & OUT_HUGE)
		return (out_huge_png(b));
	if (output_render(v, index, &px, faults & OUT_BLACK) == -1) {
		py_exc(exc, "torch.OutOfMemoryError",
		    "Allocation on device (%dx%d image)", v->w, v->h);
		return (-1);
	}
	memset(b, 0, sizeof *b);
	if (png_encode(px, v->w, v->h, level, &b->p, &b->len) == -1) {
		free(px);
		py_exc(exc, "RuntimeError", "PNG encoding failed");
		return (-1);
	}
	b->cap = b->len;
	free(px);
	if (faults & OUT_TRUNCATED)
		b->len /= 2;
	return (0);
}

static void
out_entry(
    cJSON *list, const char *name, const char *subfolder, const char *type)
{
	cJSON *e = cJSON_CreateObject();

	cJSON_AddStringToObject(e, "filename", name);
	cJSON_AddStringToObject(e, "subfolder", subfolder);
	cJSON_AddStringToObject(e, "type", type);
	cJSON_AddItemToArray(list, e);
}

/* The same_name fault: moves a saved file to <subfolder>/<counter>/name. */
static int
out_rename(const char *root, const struct save_path *sp, const char *from,
    const char *to, char *sub, size_t sublen, struct pyexc *exc)
{
	char dir[PATH_MAX], a[PATH_MAX * 2], b[PATH_MAX * 2];

	snprintf(sub, sublen, "%s%s%d", sp->subfolder,
	    *sp->subfolder ? "/" : "", sp->counter);
	path_join(root, sub, dir, sizeof dir);
	snprintf(a, sizeof a, "%s/%s", sp->folder, from);
	snprintf(b, sizeof b, "%s/%s", dir, to);
	if (path_mkdirs(dir) == -1 || rename(a, b) == -1) {
		py_exc(exc, "OSError", "[Errno %d] %s: '%s'", errno,
		    strerror(errno), b);
		return (-1);
	}
	return (0);
}

/*
 * SaveImage / PreviewImage: one PNG per image of the batch; same_name
 * (the fault) names every file so, each in a subfolder of its own.
 */
int
output_images(const struct value *v, const char *prefix, int temp, int faults,
    const char *same_name, cJSON *list, struct pyexc *exc)
{
	struct save_path sp;
	struct membuf	 b;
	const char	*root = temp ? sim.temp_dir : sim.output_dir;
	char		 name[1200], *batch, fn[1024], sub[1100];
	int		 i, rc;

	if (out_save_path(root, prefix, v->w, v->h,
		temp ? OUT_FRESH : OUT_COMFY, &sp, exc) == -1)
		return (-1);
	snprintf(fn, sizeof fn, "%s", sp.filename);
	for (i = 0; i < v->batch; i++) {
		if (out_png(v, i, temp ? 1 : 4, faults, &b, exc) == -1)
			return (-1);
		batch = xasprintf("%d", i);
		snprintf(sp.filename, sizeof sp.filename, "%s", fn);
		out_replace(
		    sp.filename, sizeof sp.filename, "%batch_num%", batch);
		free(batch);
		rc = out_claim(
		    &sp, "_", "png", b.p, b.len, 0, name, sizeof name, exc);
		free(b.p);
		if (rc != 0)
			return (-1);
		if (same_name == NULL)
			out_entry(
			    list, name, sp.subfolder, temp ? "temp" : "output");
		else if (out_rename(root, &sp, name, same_name, sub, sizeof sub,
			     exc) == -1)
			return (-1);
		else
			out_entry(
			    list, same_name, sub, temp ? "temp" : "output");
		out_used(&sp, sp.counter);
		sp.counter++;
	}
	return (0);
}

/* Bytes that start like a file of this extension, then filler. */
static unsigned char *
out_container(const char *ext, size_t len, uint64_t seed)
{
	static const unsigned char mp4[] = { 0, 0, 0, 0x20, 'f', 't', 'y', 'p',
		'i', 's', 'o', 'm', 0, 0, 2, 0, 'i', 's', 'o', 'm', 'i', 's',
		'o', '2', 'a', 'v', 'c', '1', 'm', 'p', '4', '1' };
	static const unsigned char ebml[] = { 0x1a, 0x45, 0xdf, 0xa3 };
	unsigned char		  *p = xmalloc(len);
	size_t			   i, hdr = 0;
	uint64_t		   x = seed | 1;

	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)x;
	}
	if (strcmp(ext, "mp4") == 0 || strcmp(ext, "mov") == 0) {
		memcpy(p, mp4, sizeof mp4);
		hdr = sizeof mp4;
		/* an mdat box holding the rest */
		p[hdr] = (unsigned char)((len - hdr) >> 24);
		p[hdr + 1] = (unsigned char)((len - hdr) >> 16);
		p[hdr + 2] = (unsigned char)((len - hdr) >> 8);
		p[hdr + 3] = (unsigned char)(len - hdr);
		memcpy(p + hdr + 4, "mdat", 4);
	} else if (strcmp(ext, "webm") == 0 || strcmp(ext, "mkv") == 0)
		memcpy(p, ebml, sizeof ebml);
	else if (strcmp(ext, "gif") == 0)
		memcpy(p, "GIF89a", 6);
	else if (strcmp(ext, "webp") == 0) {
		memcpy(p, "RIFF", 4);
		p[4] = (unsigned char)(len - 8);
		p[5] = (unsigned char)((len - 8) >> 8);
		p[6] = (unsigned char)((len - 8) >> 16);
		p[7] = (unsigned char)((len - 8) >> 24);
		memcpy(p + 8, "WEBPVP8X", 8);
	}
	return (p);
}

static const char *
out_video_ext(const char *format)
{
	static const struct {
		const char *suffix;
		const char *ext;
	} map[] = { { "-mp4", "mp4" }, { "webm", "webm" }, { "ProRes", "mov" },
		{ "mkv", "mkv" }, { "gif", "gif" }, { "webp", "webp" },
		{ "png", "png" } };
	size_t i, n = strlen(format), k;

	for (i = 0; i < sizeof map / sizeof map[0]; i++) {
		k = strlen(map[i].suffix);
		if (n >= k && strcmp(format + n - k, map[i].suffix) == 0)
			return (map[i].ext);
	}
	return ("mp4");
}

/* VHS_VideoCombine: the first frame as PNG, then the video. */
int
output_video(const struct value *v, double fps, const char *prefix,
    const char *format, int save_output, int pingpong, int faults, cJSON *list,
    struct pyexc *exc)
{
	struct save_path sp;
	struct membuf	 b;
	unsigned char	*data;
	const char	*ext = out_video_ext(format);
	char		 first[1200], name[1200], full[PATH_MAX * 2];
	double		 frames = v->batch, bytes;
	cJSON		*e;
	int		 rc;

	if (pingpong && frames > 2)
		frames += frames - 2;
	if (out_save_path(save_output ? sim.output_dir : sim.temp_dir, prefix,
		0, 0, OUT_VHS, &sp, exc) == -1)
		return (-1);
	if (out_png(v, 0, 1, faults & OUT_BLACK, &b, exc) == -1)
		return (-1);
	rc = out_claim(
	    &sp, "", "png", b.p, b.len, OUT_VHS, first, sizeof first, exc);
	free(b.p);
	if (rc != 0)
		return (-1);
	bytes = frames / (fps > 0 ? fps : 1) * MP4_BYTES_PER_S;
	if (bytes < VIDEO_MIN_BYTES)
		bytes = VIDEO_MIN_BYTES;
	if (faults & OUT_TINY)
		bytes = VIDEO_TINY_BYTES;
	data = out_container(ext, (size_t)bytes, v->seed);
	snprintf(name, sizeof name, "%s_%05d.%s", sp.filename, sp.counter, ext);
	snprintf(full, sizeof full, "%s/%s", sp.folder, name);
	rc = out_write(full, data, (size_t)bytes, exc);
	free(data);
	if (rc != 0)
		return (-1);
	out_used(&sp, sp.counter);
	e = cJSON_CreateObject();
	cJSON_AddStringToObject(e, "filename", name);
	cJSON_AddStringToObject(e, "subfolder", sp.subfolder);
	cJSON_AddStringToObject(e, "type", save_output ? "output" : "temp");
	cJSON_AddStringToObject(e, "format", format);
	cJSON_AddNumberToObject(e, "frame_rate", fps);
	cJSON_AddStringToObject(e, "workflow", first);
	cJSON_AddStringToObject(e, "fullpath", full);
	cJSON_AddItemToArray(list, e);
	return (0);
}

/* SaveAnimatedWEBP: one animated file for the whole batch. */
int
output_webp(const struct value *v, double fps, const char *prefix, int faults,
    cJSON *list, struct pyexc *exc)
{
	struct save_path sp;
	unsigned char	*data;
	char		 name[1200];
	size_t		 bytes = (size_t)v->w * v->h / 8 * v->batch + 4096;
	int		 rc;

	(void)fps;
	if (faults & OUT_TINY)
		bytes = VIDEO_TINY_BYTES;
	if (bytes > (64u << 20))
		bytes = 64u << 20;
	if (out_save_path(sim.output_dir, prefix, v->w, v->h, 0, &sp, exc) ==
	    -1)
		return (-1);
	data = out_container("webp", bytes, v->seed);
	rc =
	    out_claim(&sp, "_", "webp", data, bytes, 0, name, sizeof name, exc);
	free(data);
	if (rc != 0)
		return (-1);
	out_used(&sp, sp.counter);
	out_entry(list, name, sp.subfolder, "output");
	return (0);
}

void
output_reset(void)
{
	png_reset();
	omap_free(counters, free);
	counters = NULL;
}
