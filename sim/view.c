/*
 * GET /view, with ComfyUI's guards in ComfyUI's order: a " [output]"
 * style suffix picks the folder; an empty name, a leading '/' or any ".."
 * in the name is 400; an unknown type 400; a subfolder that leaves the
 * folder 403 (a lexical check, as os.path.commonpath does); then only the
 * base name of `filename` counts, and a missing file is 404. The file goes
 * out with its guessed type (HTML, JS and CSS as octet-stream) and a
 * Content-Disposition (a file up to 256 KiB read into memory, a larger one
 * sent as a file segment). channel=rgb|a and preview=jpeg;<q> re-encode with
 * stb; a WebP preview is answered as JPEG, the one encoding the sim lacks.
 * The slow-view fault holds the finished reply back for a while.
 */
#include <sys/stat.h>
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "log.h"
#include "sim.h"
#include "xmalloc.h"

#define VIEW_READ_MAX (256 << 10) /* bytes read, not mapped */

struct held {
	struct evhttp_request *req;
	struct evbuffer	      *body;
	struct event	      *ev;
	struct held	      *next;
};

static struct held *held;

static const char *
view_type(const char *name)
{
	static const struct {
		const char *ext;
		const char *type;
	} types[] = { { ".png", "image/png" }, { ".jpg", "image/jpeg" },
		{ ".jpeg", "image/jpeg" }, { ".webp", "image/webp" },
		{ ".gif", "image/gif" }, { ".mp4", "video/mp4" },
		{ ".webm", "video/webm" }, { ".mov", "video/quicktime" },
		{ ".mkv", "video/x-matroska" }, { ".json", "application/json" },
		{ ".txt", "text/plain" }, { ".wav", "audio/x-wav" },
		{ ".mp3", "audio/mpeg" }, { ".flac", "audio/flac" } };
	const char *dot = strrchr(name, '.');
	size_t	    i;

	for (i = 0; dot != NULL && i < sizeof types / sizeof types[0]; i++)
		if (strcasecmp(dot, types[i].ext) == 0)
			return (types[i].type);
	return ("application/octet-stream");
}

static void
view_held_cb(evutil_socket_t fd, short what, void *arg)
{
	struct held *h = arg, **pp;

	(void)fd;
	(void)what;
	for (pp = &held; *pp != h; pp = &(*pp)->next)
		;
	*pp = h->next;
	evhttp_send_reply(h->req, 200, NULL, h->body);
	evbuffer_free(h->body);
	event_free(h->ev);
	free(h);
}

/* Sends the file now, or after the slow-view fault's delay. */
static void
view_reply(struct evhttp_request *req, struct evbuffer *body, const char *type,
    const char *name)
{
	struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);
	struct held	 *h;
	struct timeval	  tv;
	long long	  ms = faults_view_delay();
	char		  cd[1200];

	evhttp_add_header(hdr, "Content-Type", type);
	snprintf(cd, sizeof cd, "filename=\"%s\"", name);
	evhttp_add_header(hdr, "Content-Disposition", cd);
	if (ms <= 0) {
		evhttp_send_reply(req, 200, NULL, body);
		evbuffer_free(body);
		return;
	}
	log_notice("fault: /view of %s held for %lld ms", name, ms);
	h = xcalloc(1, sizeof *h);
	h->req = req;
	h->body = body;
	if ((h->ev = evtimer_new(sim.base, view_held_cb, h)) == NULL)
		fatalx("view: cannot create a timer");
	h->next = held;
	held = h;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(h->ev, &tv);
}

static void
view_add(void *ctx, void *data, int size)
{
	evbuffer_add(ctx, data, (size_t)size);
}

/* channel=rgb|a or preview=...: a re-encoded image, or -1 (500). */
static int
view_reencode(const char *path, const char *channel, const char *preview,
    struct evbuffer *b, const char **type)
{
	unsigned char *px;
	int	       w, h, n, q = 90, i, rc;
	const char    *semi;

	if ((px = stbi_load(path, &w, &h, &n, 4)) == NULL)
		return (-1);
	if (preview != NULL) {
		semi = strrchr(preview, ';');
		if (semi != NULL && isdigit((unsigned char)semi[1]))
			q = atoi(semi + 1);
		for (i = 0; i < w * h; i++)
			memmove(px + i * 3, px + i * 4, 3);
		rc = stbi_write_jpg_to_func(view_add, b, w, h, 3, px, q);
		*type = "image/jpeg";
	} else if (strcmp(channel, "a") == 0) {
		for (i = 0; i < w * h; i++)
			px[i * 4] = px[i * 4 + 1] = px[i * 4 + 2] = 0;
		rc = stbi_write_png_to_func(view_add, b, w, h, 4, px, w * 4);
		*type = "image/png";
	} else {
		for (i = 0; i < w * h; i++)
			memmove(px + i * 3, px + i * 4, 3);
		rc = stbi_write_png_to_func(view_add, b, w, h, 3, px, w * 3);
		*type = "image/png";
	}
	stbi_image_free(px);
	return (rc ? 0 : -1);
}

/*
 * The file's bytes into b. A small file is copied at once (an mmap, its
 * page fault and munmap cost more than the copy): 1, and fd is still the
 * caller's to close. A large one goes as a file segment that owns fd from
 * then on (mmap or sendfile): 0. -1 on failure, fd still the caller's.
 */
static int
view_add_file(struct evbuffer *b, int fd, off_t size)
{
	struct evbuffer_iovec v;
	size_t		      got = 0;
	ssize_t		      n;

	if (size > VIEW_READ_MAX)
		return (evbuffer_add_file(b, fd, 0, size));
	if (size == 0)
		return (1);
	if (evbuffer_reserve_space(b, (ev_ssize_t)size, &v, 1) != 1)
		return (-1);
	while (got < (size_t)size &&
	    (n = read(fd, (char *)v.iov_base + got, (size_t)size - got)) > 0)
		got += (size_t)n;
	v.iov_len = got;
	return (evbuffer_commit_space(b, &v, 1) == 0 ? 1 : -1);
}

int
route_view(struct evhttp_request *req, cJSON *body)
{
	const char	*fn = http_query(req, "filename");
	const char	*type = http_query(req, "type");
	const char	*sub = http_query(req, "subfolder");
	const char	*channel = http_query(req, "channel");
	const char	*preview = http_query(req, "preview");
	const char	*dir = NULL, *base, *ctype;
	char		 name[PATH_MAX], folder[PATH_MAX], path[PATH_MAX * 2];
	struct stat	 st;
	struct evbuffer *b;
	size_t		 n;
	int		 fd, k;
	static const struct {
		const char *tag;
		int	    len;
	} tags[] = { { "[output]", 9 }, { "[input]", 8 }, { "[temp]", 7 } };

	(void)body;
	if (fn == NULL)
		return (404);
	snprintf(name, sizeof name, "%s", fn);
	n = strlen(name);
	for (k = 0; k < 3; k++)
		if (n >= strlen(tags[k].tag) &&
		    strcmp(name + n - strlen(tags[k].tag), tags[k].tag) == 0) {
			name[n >= (size_t)tags[k].len ? n - tags[k].len : 0] =
			    '\0';
			dir = k == 0 ? sim.output_dir
			    : k == 1 ? sim.input_dir
				     : sim.temp_dir;
		}
	if (name[0] == '\0' || name[0] == '/' || strstr(name, "..") != NULL)
		return (400);
	if (dir == NULL) {
		if (type == NULL || strcmp(type, "output") == 0)
			dir = sim.output_dir;
		else if (strcmp(type, "input") == 0)
			dir = sim.input_dir;
		else if (strcmp(type, "temp") == 0)
			dir = sim.temp_dir;
		else
			return (400);
	}
	snprintf(folder, sizeof folder, "%s", dir);
	if (sub != NULL) {
		snprintf(path, sizeof path, "%s%s%s", sub[0] == '/' ? "" : dir,
		    sub[0] == '/' ? "" : "/", sub);
		path_norm(path, folder, sizeof folder);
		if (!path_inside(dir, folder))
			return (403);
	}
	base = strrchr(name, '/') != NULL ? strrchr(name, '/') + 1 : name;
	snprintf(path, sizeof path, "%s/%s", folder, base);
	if (stat(path, &st) == -1 || !S_ISREG(st.st_mode))
		return (404);
	b = evbuffer_new();
	if (preview != NULL ||
	    (channel != NULL && strcmp(channel, "rgba") != 0 &&
		(strcmp(channel, "rgb") == 0 || strcmp(channel, "a") == 0))) {
		if (view_reencode(path, channel, preview, b, &ctype) == -1) {
			evbuffer_free(b);
			return (500);
		}
		view_reply(req, b, ctype, base);
		return (0);
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    (k = view_add_file(b, fd, st.st_size)) == -1) {
		if (fd != -1)
			close(fd);
		evbuffer_free(b);
		return (404);
	}
	if (k == 1)
		close(fd);
	ctype = view_type(base);
	view_reply(req, b, ctype, base);
	return (0);
}

/* Sends every held reply now (the sim is stopping). */
void
view_shutdown(void)
{
	while (held != NULL)
		view_held_cb(-1, 0, held);
}
