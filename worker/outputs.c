/*
 * Outputs of a finished prompt (see outputs.h).
 *
 * Collecting: every node's UI dict in the history entry is walked, and any
 * list of objects with filename/subfolder/type is a file (images, gifs,
 * audio, custom keys alike; comfyui-api.md §7.11). Files of type "output"
 * are the deliverables; "temp" files (PreviewImage) count only when a graph
 * saved nothing else, and are fetched at once because a restart wipes them.
 * The names come from ComfyUI's history, which custom nodes fill: a file
 * name is one path component (no '/', no leading '.'), a subfolder has no
 * ".." component and no leading '/', neither has a control character or a
 * backslash or is anything but UTF-8, and both are bounded. Each file gets
 * a stored name unique in the job: its own name, or, when an earlier file
 * of the job has it, "<stem>-<n><.ext>" (n from 2), so a/x.png and b/x.png
 * become x.png and x-2.png.
 *
 * Validating: still images must declare a size within the operator's pixel
 * cap (read from the header, before anything is decoded) and the asked-for
 * one, decode completely (img_decode), and not be a blank frame (black or
 * one colour, which is what a failed VAE or a safety filter produces)
 * unless the workflow allows it; videos must carry their container's magic
 * and be at least 10 KB and 50 KB per second of asked-for duration; other
 * files must not be empty.
 *
 * Storing: <output-dir>/<job id>/<stored name>, written to a hidden
 * temporary name (".tmp-<index>-<pid>", which no stored name can be) and
 * renamed, so a reader never sees half a file. A file streamed from /view
 * is validated where it lies, through a read-only mapping. With
 * output-fsync off it is renamed on the loop, unflushed; with it on it
 * goes into the job's batch (outputs_sync.c), which flushes each file,
 * renames it and flushes the directory once, on a pool thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errout.h"
#include "img.h"
#include "outputs.h"
#include "xmalloc.h"

#define OUT_MAX_FILES	      64
#define VIDEO_MIN_BYTES	      (10 * 1024)
#define VIDEO_MIN_BYTES_PER_S (50 * 1024)
#define OUT_NAME_MAX	      200  /* bytes of a file name */
#define OUT_SUBFOLDER_MAX     1024 /* bytes of a subfolder */

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
	o->stored = NULL;
}

/* Walks outputs, adding files of the given type; -1 past the cap. */
static int
out_walk(const cJSON *outputs, const char *type, struct out_list *l)
{
	const cJSON *node, *key, *f, *anim;
	int	     animated;

	cJSON_ArrayForEach(node, outputs) {
		anim = cJSON_GetObjectItemCaseSensitive(node, "animated");
		animated = cJSON_IsArray(anim) && cJSON_IsTrue(anim->child);
		cJSON_ArrayForEach(key, node) {
			if (!cJSON_IsArray(key))
				continue;
			cJSON_ArrayForEach(f, key) {
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

static int out_utf8(const unsigned char *);

/*
 * s for a message: cut at 64 bytes; control bytes, '"', '\\' and (when s
 * is not UTF-8) bytes over 0x7f as \xNN.
 */
static void
out_quote(const char *s, char *buf, size_t len)
{
	const unsigned char *p;
	size_t		     o = 0;
	int		     high = !out_utf8((const unsigned char *)s);

	for (p = (const unsigned char *)s; *p != '\0' && o + 5 < len; p++) {
		if (p - (const unsigned char *)s == 64) {
			snprintf(buf + o, len - o, "...");
			return;
		}
		if (*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\' ||
		    (high && *p > 0x7f))
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", *p);
		else
			buf[o++] = (char)*p;
	}
	buf[o] = '\0';
}

/* Whether s is UTF-8: no stray, overlong or surrogate sequences. */
static int
out_utf8(const unsigned char *s)
{
	unsigned long c;
	int	      n, i;

	while (*s != '\0') {
		if (*s < 0x80) {
			s++;
			continue;
		}
		if ((*s & 0xe0) == 0xc0)
			n = 1, c = *s & 0x1f;
		else if ((*s & 0xf0) == 0xe0)
			n = 2, c = *s & 0x0f;
		else if ((*s & 0xf8) == 0xf0)
			n = 3, c = *s & 0x07;
		else
			return (0);
		for (i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return (0);
			c = c << 6 | (s[i] & 0x3f);
		}
		if ((n == 1 && c < 0x80) || (n == 2 && c < 0x800) ||
		    (n == 3 && c < 0x10000) || c > 0x10ffff ||
		    (c >= 0xd800 && c <= 0xdfff))
			return (0);
		s += n + 1;
	}
	return (1);
}

/*
 * Checks a name from the history (see the top): a file name, or with
 * folder set a subfolder. Returns 0, or -1 with the reason in err.
 */
static int
out_name_check(const char *s, int folder, char *err, size_t errlen)
{
	const char	    *what = folder ? "subfolder" : "file name", *c;
	const unsigned char *p;
	char		     q[300];
	size_t		     n = strlen(s), k;

	out_quote(s, q, sizeof q);
	if (n > (folder ? OUT_SUBFOLDER_MAX : OUT_NAME_MAX))
		ERR_OUT("%s \"%s\" is over %d bytes", what, q,
		    folder ? OUT_SUBFOLDER_MAX : OUT_NAME_MAX);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			ERR_OUT("%s \"%s\" has a control character (0x%02x)",
			    what, q, *p);
		if (*p == '\\')
			ERR_OUT("%s \"%s\" has a backslash", what, q);
	}
	if (!out_utf8((const unsigned char *)s))
		ERR_OUT("%s \"%s\" is not UTF-8", what, q);
	if (*s == '/')
		ERR_OUT("%s \"%s\" starts with '/'", what, q);
	if (!folder) {
		if (n == 0)
			ERR_OUT("a file name is empty");
		if (strchr(s, '/') != NULL)
			ERR_OUT("file name \"%s\" has a '/'", q);
		if (*s == '.')
			ERR_OUT("file name \"%s\" starts with '.'", q);
		return (0);
	}
	for (c = s; *c != '\0'; c += k + (c[k] == '/')) {
		k = strcspn(c, "/");
		if (k == 2 && strncmp(c, "..", 2) == 0)
			ERR_OUT("subfolder \"%s\" has a '..' component", q);
	}
	return (0);
}

static int
out_name_taken(const struct out_list *l, int upto, const char *name)
{
	int i;

	for (i = 0; i < upto; i++)
		if (strcmp(l->v[i].stored, name) == 0)
			return (1);
	return (0);
}

/* Gives each file its stored name, unique in the list (see the top). */
static void
out_name_unique(struct out_list *l)
{
	const char *base, *dot;
	char	   *name;
	int	    i, n;

	for (i = 0; i < l->n; i++) {
		base = l->v[i].filename;
		if ((dot = strrchr(base, '.')) == NULL || dot == base)
			dot = base + strlen(base);
		name = xstrdup(base);
		for (n = 2; out_name_taken(l, i, name); n++) {
			free(name);
			name = xasprintf(
			    "%.*s-%d%s", (int)(dot - base), base, n, dot);
		}
		l->v[i].stored = name;
	}
}

/* Checks every name of the list; -1 with err naming the first bad one. */
static int
out_names_check(const struct out_list *l, char *err, size_t errlen)
{
	char why[512], q[300];
	int  i;

	for (i = 0; i < l->n; i++) {
		if (out_name_check(l->v[i].filename, 0, why, sizeof why) == 0 &&
		    out_name_check(l->v[i].subfolder, 1, why, sizeof why) == 0)
			continue;
		out_quote(l->v[i].node, q, sizeof q);
		ERR_OUT("node %s: %s", q, why);
	}
	return (0);
}

/*
 * Collects the deliverable files of a history entry (the object under the
 * prompt id), each with its stored name. Returns the count, or -1 with err
 * set (too many files, or a name that may not be used).
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
	if (out_names_check(l, err, errlen) == -1) {
		outputs_free(l);
		return (-1);
	}
	out_name_unique(l);
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
		free(l->v[i].stored);
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

/* Outputs may be large: the operator's pixel cap is what bounds them. */
#define OUT_MAX_SIDE (1 << 24) /* stb_image's own limit */

/*
 * Checks an image output: its declared size first, then its pixels. On -1
 * rec may hold width and height already; rec stays the caller's.
 */
static int
out_check_image(const unsigned char *data, size_t len,
    const struct out_expect *ex, cJSON *rec, char *err, size_t errlen)
{
	struct img_limits lim = { (size_t)1 << 31,
		ex->max_pixels > 0 ? ex->max_pixels
				   : (long long)OUT_MAX_SIDE * OUT_MAX_SIDE,
		1, OUT_MAX_SIDE };
	struct img	  im;
	enum img_blank	  blank;
	char		  why[256];
	int		  w, h;

	/* What the header declares decides before a pixel is decoded. */
	if (img_info(data, len, &w, &h, why, sizeof why) == -1)
		ERR_OUT("image does not decode: %s", why);
	if (ex->max_pixels > 0 && (long long)w * h > ex->max_pixels)
		ERR_OUT(
		    "image declares %dx%d (%lld pixels), over max-output-pixels (%lld)",
		    w, h, (long long)w * h, ex->max_pixels);
	if ((ex->width > 0 && w != ex->width) ||
	    (ex->height > 0 && h != ex->height))
		ERR_OUT("image is %dx%d, %dx%d was asked for", w, h, ex->width,
		    ex->height);
	if (img_decode(data, len, &lim, 0, &im, why, sizeof why) == -1)
		ERR_OUT("image does not decode: %s", why);
	cJSON_AddNumberToObject(rec, "width", im.w);
	cJSON_AddNumberToObject(rec, "height", im.h);
	blank = img_blank(&im);
	img_free(&im);
	if (!ex->allow_blank && blank != IMG_BLANK_NO)
		ERR_OUT("image is blank (%s)",
		    blank == IMG_BLANK_BLACK ? "black" : "one colour");
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
		    "video of %zu bytes is under the %.0f byte floor", len,
		    floor_b);
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

void
output_tmp_init(struct out_tmp *t)
{
	t->fd = -1;
	t->tmp[0] = t->path[0] = '\0';
}

/* Closes and removes a temporary file not committed; safe to repeat. */
void
output_tmp_discard(struct out_tmp *t)
{
	if (t->fd == -1)
		return;
	close(t->fd);
	unlink(t->tmp);
	t->fd = -1;
}

/*
 * Creates <dir>/<jid>/ and opens a temporary file there for f, the
 * index-th output of the job (see the top). Returns 0, or -1 with err;
 * then no file is open (t->fd is -1), and a folder it made stays for the
 * job's other outputs and the janitor's cleanup. The caller discards t
 * (output_tmp_discard) or commits it either way.
 */
int
output_tmp_open(struct out_tmp *t, const char *dir, const char *jid,
    const struct out_file *f, int index, char *err, size_t errlen)
{
	char sub[OUT_PATH_MAX];

	output_tmp_discard(t);
	if ((size_t)snprintf(sub, sizeof sub, "%s/%s", dir, jid) >=
		sizeof sub ||
	    (size_t)snprintf(t->path, sizeof t->path, "%s/%s", sub,
		f->stored) >= sizeof t->path ||
	    (size_t)snprintf(t->tmp, sizeof t->tmp, "%s/.tmp-%d-%d", sub, index,
		(int)getpid()) >= sizeof t->tmp)
		ERR_OUT("output path too long");
	if (mkdir(dir, 0755) == -1 && errno != EEXIST)
		ERR_OUT("%s: %s", dir, strerror(errno));
	if (mkdir(sub, 0755) == -1 && errno != EEXIST)
		ERR_OUT("%s: %s", sub, strerror(errno));
	if ((t->fd = open(t->tmp,
		 O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644)) ==
	    -1)
		ERR_OUT("%s: %s", t->tmp, strerror(errno));
	return (0);
}

/*
 * Validates the file written so far (output_validate), through a
 * read-only mapping: only the pages a check reads come into memory.
 */
int
output_tmp_validate(const struct out_tmp *t, const struct out_file *f,
    const struct out_expect *ex, cJSON *rec, char *err, size_t errlen)
{
	struct stat st;
	void	   *map = NULL;
	int	    rc;

	if (fstat(t->fd, &st) == -1)
		ERR_OUT("%s: %s", t->tmp, strerror(errno));
	if (st.st_size > 0 &&
	    (map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, t->fd,
		 0)) == MAP_FAILED)
		ERR_OUT("%s: mmap: %s", t->tmp, strerror(errno));
	rc = output_validate(f, map != NULL ? map : "", (size_t)st.st_size, ex,
	    rec, err, errlen);
	if (map != NULL)
		munmap(map, (size_t)st.st_size);
	return (rc);
}

/*
 * Renames the temporary file into place, unflushed (output-fsync off; with
 * it on, outputs_sync.c flushes and renames off the loop thread), and adds
 * "path" to rec. Returns 0, or -1 with err; the temporary file is gone
 * either way.
 */
int
output_tmp_commit(struct out_tmp *t, cJSON *rec, char *err, size_t errlen)
{
	int rc;

	rc = close(t->fd);
	t->fd = -1;
	if (rc == -1 || rename(t->tmp, t->path) == -1) {
		snprintf(err, errlen, "%s: %s", rc == -1 ? t->tmp : t->path,
		    strerror(errno));
		unlink(t->tmp);
		return (-1);
	}
	cJSON_AddStringToObject(rec, "path", t->path);
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
 * Stores data (the index-th output of the job) as <dir>/<jid>/<stored
 * name>: renamed into place now, "path" added to rec; or, with keep set,
 * written to its temporary file and left open there in *keep, for the
 * caller to commit (output-fsync's batch, outputs_sync.h). Returns 0, or
 * -1 with the reason in err.
 */
int
output_store_dir(const char *dir, const char *jid, const struct out_file *f,
    int index, const unsigned char *data, size_t len, struct out_tmp *keep,
    cJSON *rec, char *err, size_t errlen)
{
	struct out_tmp t;

	output_tmp_init(&t);
	if (output_tmp_open(&t, dir, jid, f, index, err, errlen) == -1)
		return (-1);
	if (out_write_all(t.fd, data, len) == -1) {
		snprintf(err, errlen, "%s: %s", t.tmp, strerror(errno));
		output_tmp_discard(&t);
		return (-1);
	}
	if (keep != NULL) {
		*keep = t;
		return (0);
	}
	return (output_tmp_commit(&t, rec, err, errlen));
}
