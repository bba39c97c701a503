/*
 * Outputs of a finished prompt (see outputs.h).
 *
 * Collecting: every node's UI dict in the history entry is walked, and any
 * list of objects with filename/subfolder/type is a file (images, gifs,
 * audio, custom keys alike; comfyui-api.md §7.11). Files of type "output"
 * are the deliverables; "temp" files (PreviewImage) count only when a graph
 * saved nothing else, and are fetched at once because a restart wipes them.
 *
 * Validating: still images must decode completely (img_decode), have the
 * asked-for size, and not be a blank frame (black or one colour, which
 * is what a failed VAE or a safety filter produces) unless the workflow allows
 * it; videos must carry their container's magic and be at least 10 KB and
 * 50 KB per second of asked-for duration; other files must not be empty.
 *
 * Storing: <output-dir>/<job id>/<file name>, written to a temporary name
 * and renamed, so a reader never sees half a file.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "img.h"
#include "outputs.h"
#include "xmalloc.h"

#define OUT_MAX_FILES	      64
#define VIDEO_MIN_BYTES	      (10 * 1024)
#define VIDEO_MIN_BYTES_PER_S (50 * 1024)
#define BLANK_STDDEV	      2.0 /* luma std-dev under this: blank */

static const char *
out_str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return (cJSON_IsString(v) ? v->valuestring : NULL);
}

static void
out_add(struct out_list *l, const char *node, const char *key, const cJSON *f,
    int animated)
{
	struct out_file *o;

	l->v = xrealloc(l->v, (size_t)(l->n + 1) * sizeof *l->v);
	o = &l->v[l->n++];
	o->node = xstrdup(node);
	o->key = xstrdup(key);
	o->filename = xstrdup(out_str(f, "filename"));
	o->subfolder =
	    xstrdup(out_str(f, "subfolder") ? out_str(f, "subfolder") : "");
	o->type = xstrdup(out_str(f, "type") ? out_str(f, "type") : "output");
	o->format = out_str(f, "format") ? xstrdup(out_str(f, "format")) : NULL;
	o->animated = animated;
}

/* Walks outputs, adding files of the given type; -1 past the cap. */
static int
out_walk(const cJSON *outputs, const char *type, struct out_list *l)
{
	const cJSON *node, *key, *f, *anim;
	int	     animated;

	cJSON_ArrayForEach(node, outputs)
	{
		anim = cJSON_GetObjectItemCaseSensitive(node, "animated");
		animated = cJSON_IsArray(anim) && cJSON_IsTrue(anim->child);
		cJSON_ArrayForEach(key, node)
		{
			if (!cJSON_IsArray(key))
				continue;
			cJSON_ArrayForEach(f, key)
			{
				if (!cJSON_IsObject(f) ||
				    out_str(f, "filename") == NULL)
					continue;
				if (strcmp(out_str(f, "type")
					    ? out_str(f, "type")
					    : "output",
					type) != 0)
					continue;
				if (l->n == OUT_MAX_FILES)
					return (-1);
				out_add(
				    l, node->string, key->string, f, animated);
			}
		}
	}
	return (0);
}

/*
 * Collects the deliverable files of a history entry (the object under the
 * prompt id). Returns the count, or -1 with err set.
 */
int
outputs_collect(
    const cJSON *entry, struct out_list *l, char *err, size_t errlen)
{
	const cJSON *outputs;

	memset(l, 0, sizeof *l);
	outputs = cJSON_GetObjectItemCaseSensitive(entry, "outputs");
	if (!cJSON_IsObject(outputs)) {
		snprintf(err, errlen, "history entry has no outputs");
		return (-1);
	}
	if (out_walk(outputs, "output", l) == -1 ||
	    (l->n == 0 && out_walk(outputs, "temp", l) == -1)) {
		snprintf(
		    err, errlen, "more than %d output files", OUT_MAX_FILES);
		outputs_free(l);
		return (-1);
	}
	return (l->n);
}

void
outputs_free(struct out_list *l)
{
	int i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].node);
		free(l->v[i].key);
		free(l->v[i].filename);
		free(l->v[i].subfolder);
		free(l->v[i].type);
		free(l->v[i].format);
	}
	free(l->v);
	memset(l, 0, sizeof *l);
}

static const char *
out_ext(const char *name)
{
	const char *dot = strrchr(name, '.');

	return (dot != NULL ? dot + 1 : "");
}

/* The MIME type of a file, from its format field or its extension. */
const char *
output_mime(const struct out_file *f)
{
	static const struct {
		const char *ext;
		const char *mime;
	} map[] = {
		{ "png", "image/png" },
		{ "jpg", "image/jpeg" },
		{ "jpeg", "image/jpeg" },
		{ "webp", "image/webp" },
		{ "gif", "image/gif" },
		{ "bmp", "image/bmp" },
		{ "mp4", "video/mp4" },
		{ "webm", "video/webm" },
		{ "mov", "video/quicktime" },
		{ "mkv", "video/x-matroska" },
		{ "wav", "audio/wav" },
		{ "flac", "audio/flac" },
		{ "mp3", "audio/mpeg" },
		{ "ogg", "audio/ogg" },
		{ "txt", "text/plain" },
		{ "json", "application/json" },
	};
	const char *ext = out_ext(f->filename);
	size_t	    i;

	for (i = 0; i < sizeof map / sizeof map[0]; i++)
		if (strcasecmp(ext, map[i].ext) == 0)
			return (map[i].mime);
	return ("application/octet-stream");
}

static int
out_is_video(const struct out_file *f)
{
	return (strncmp(output_mime(f), "video/", 6) == 0 ||
	    (f->format != NULL && strncmp(f->format, "video/", 6) == 0));
}

/* Output images may be large, but never absurd. */
static const struct img_limits out_img_limits = {
	.max_bytes = (size_t)1 << 31,
	.max_pixels = 16384LL * 16384,
	.min_side = 1,
	.max_side = 16384,
};

static int
out_check_image(const unsigned char *data, size_t len,
    const struct out_expect *ex, cJSON *rec, char *err, size_t errlen)
{
	struct img     im;
	enum img_blank blank;
	char	       why[256];

	if (img_decode(data, len, &out_img_limits, 0, &im, why, sizeof why) ==
	    -1) {
		snprintf(err, errlen, "image does not decode: %s", why);
		return (-1);
	}
	cJSON_AddNumberToObject(rec, "width", im.w);
	cJSON_AddNumberToObject(rec, "height", im.h);
	if ((ex->width > 0 && im.w != ex->width) ||
	    (ex->height > 0 && im.h != ex->height)) {
		snprintf(err, errlen, "image is %dx%d, %dx%d was asked for",
		    im.w, im.h, ex->width, ex->height);
		img_free(&im);
		return (-1);
	}
	blank = img_blank(&im);
	img_free(&im);
	if (!ex->allow_blank && blank != IMG_BLANK_NO) {
		snprintf(err, errlen, "image is blank (%s)",
		    blank == IMG_BLANK_BLACK ? "black" : "one colour");
		return (-1);
	}
	return (0);
}

static int
out_check_video(const unsigned char *data, size_t len,
    const struct out_expect *ex, cJSON *rec, char *err, size_t errlen)
{
	double floor_b = VIDEO_MIN_BYTES;

	if (!(len >= 12 && memcmp(data + 4, "ftyp", 4) == 0) &&
	    !(len >= 4 && memcmp(data, "\x1a\x45\xdf\xa3", 4) == 0)) {
		snprintf(err, errlen, "video has no MP4 or WebM header");
		return (-1);
	}
	if (ex->duration_s > 0) {
		cJSON_AddNumberToObject(rec, "duration_s", ex->duration_s);
		floor_b = fmax(floor_b, VIDEO_MIN_BYTES_PER_S * ex->duration_s);
	}
	if ((double)len < floor_b) {
		snprintf(err, errlen,
		    "video of %zu bytes is under the %.0f "
		    "byte floor",
		    len, floor_b);
		return (-1);
	}
	return (0);
}

/*
 * Checks one output file and fills rec (mime, bytes, width, height).
 * Returns 0, or -1 with the reason in err.
 */
int
output_validate(const struct out_file *f, const unsigned char *data, size_t len,
    const struct out_expect *ex, cJSON *rec, char *err, size_t errlen)
{
	const char *mime = output_mime(f);

	cJSON_AddStringToObject(rec, "node", f->node);
	cJSON_AddStringToObject(rec, "filename", f->filename);
	cJSON_AddStringToObject(rec, "mime",
	    out_is_video(f) && strncmp(mime, "video/", 6) != 0 ? "video/mp4"
							       : mime);
	cJSON_AddNumberToObject(rec, "bytes", (double)len);
	if (len == 0) {
		snprintf(err, errlen, "%s is empty", f->filename);
		return (-1);
	}
	if (out_is_video(f))
		return (out_check_video(data, len, ex, rec, err, errlen));
	if (strcmp(mime, "image/png") == 0 || strcmp(mime, "image/jpeg") == 0 ||
	    strcmp(mime, "image/bmp") == 0 ||
	    (strcmp(mime, "image/gif") == 0 && !f->animated))
		return (out_check_image(data, len, ex, rec, err, errlen));
	if (strcmp(mime, "image/webp") == 0 &&
	    (len < 12 || memcmp(data, "RIFF", 4) != 0 ||
		memcmp(data + 8, "WEBP", 4) != 0)) {
		snprintf(err, errlen, "%s is not a WebP file", f->filename);
		return (-1);
	}
	return (0);
}

/* Writes all of data to fd; -1 on error. */
static int
out_write_all(int fd, const unsigned char *data, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, data, len)) == -1) {
			if (errno == EINTR)
				continue;
			return (-1);
		}
		data += n;
		len -= (size_t)n;
	}
	return (0);
}

/*
 * Stores data as <dir>/<jid>/<basename of the file> and adds "path" to
 * rec. Returns 0, or -1 with the reason in err.
 */
int
output_store_dir(const char *dir, const char *jid, const struct out_file *f,
    const unsigned char *data, size_t len, cJSON *rec, char *err, size_t errlen)
{
	char	    sub[4096], path[4096], tmp[4120];
	const char *base = strrchr(f->filename, '/');
	int	    fd;

	base = base != NULL ? base + 1 : f->filename;
	if (*base == '\0' || strcmp(base, "..") == 0 || *base == '.') {
		snprintf(
		    err, errlen, "unsafe output file name '%s'", f->filename);
		return (-1);
	}
	if ((size_t)snprintf(sub, sizeof sub, "%s/%s", dir, jid) >=
		sizeof sub ||
	    (size_t)snprintf(path, sizeof path, "%s/%s", sub, base) >=
		sizeof path) {
		snprintf(err, errlen, "output path too long");
		return (-1);
	}
	if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return (-1);
	}
	if (mkdir(sub, 0755) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", sub, strerror(errno));
		return (-1);
	}
	snprintf(tmp, sizeof tmp, "%.4096s.tmp.%d", path, (int)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) ==
	    -1) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return (-1);
	}
	if (out_write_all(fd, data, len) == -1 || fsync(fd) == -1) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return (-1);
	}
	close(fd);
	if (rename(tmp, path) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return (-1);
	}
	cJSON_AddStringToObject(rec, "path", path);
	return (0);
}
