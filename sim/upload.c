/*
 * POST /upload/image, as server.py's image_upload(): a multipart form with
 * an `image` file part and optional `type` (input, temp, output; anything
 * else makes ComfyUI raise: 500), `subfolder` and `overwrite`. No image
 * part, an empty file name or a path leaving the folder is 400 with an
 * empty body. Without overwrite, a clash with a file of the same bytes
 * reuses the name, other bytes get "name (1).png", "name (2).png"... The
 * reply is {"name", "subfolder" (as sent), "type"}. The content is not
 * checked, as ComfyUI does not check it either.
 */
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "reqparse.h"
#include "sim.h"
#include "util.h"
#include "xmalloc.h"

/* A plain field's value as a new string ("" when absent). */
static char *
form_str(const struct rp_form *f, const char *name, int *present)
{
	const struct rp_part *p = rp_form_get(f, name);

	*present = p != NULL;
	return (p != NULL ? xstrndup(p->data, p->len) : xstrdup(""));
}

static int
upload_same(const char *path, const struct rp_part *img)
{
	char   err[256], *old;
	size_t len;
	int    same;

	if ((old = file_slurp(path, img->len, &len, err, sizeof err)) == NULL)
		return (0);
	same = len == img->len && memcmp(old, img->data, len) == 0;
	free(old);
	return (same);
}

static int
upload_save(struct evhttp_request *req, const struct rp_form *f)
{
	const struct rp_part *img = rp_form_get(f, "image");
	char *type, *sub, *ow, *dot, dir[PATH_MAX], folder[PATH_MAX],
	    path[PATH_MAX * 2], tmp[PATH_MAX * 2], name[PATH_MAX],
	    stem[PATH_MAX];
	int	    has_type, has_sub, has_ow, i, rc = 0, fd, dup = 0;
	struct stat st;
	cJSON	   *o;

	type = form_str(f, "type", &has_type);
	sub = form_str(f, "subfolder", &has_sub);
	ow = form_str(f, "overwrite", &has_ow);
	if (!has_type || strcmp(type, "input") == 0)
		snprintf(dir, sizeof dir, "%s", sim.input_dir);
	else if (strcmp(type, "temp") == 0)
		snprintf(dir, sizeof dir, "%s", sim.temp_dir);
	else if (strcmp(type, "output") == 0)
		snprintf(dir, sizeof dir, "%s", sim.output_dir);
	else {
		rc = 500; /* UnboundLocalError in get_dir_by_type() */
		goto out;
	}
	if (img == NULL || (img->filename == NULL && img->len == 0)) {
		rc = 400;
		goto out;
	}
	if (img->filename == NULL) {
		rc = 500; /* a plain field has no .file */
		goto out;
	}
	if (img->filename[0] == '\0') {
		rc = 400;
		goto out;
	}
	snprintf(tmp, sizeof tmp, "%s/%s", dir, sub);
	path_norm(tmp, folder, sizeof folder);
	snprintf(tmp, sizeof tmp, "%s/%s", folder, img->filename);
	path_norm(
	    img->filename[0] == '/' ? img->filename : tmp, path, sizeof path);
	if (!path_inside(dir, path) || !path_inside(dir, folder)) {
		rc = 400;
		goto out;
	}
	if (path_mkdirs(folder) == -1) {
		rc = 500;
		goto out;
	}
	snprintf(name, sizeof name, "%s", img->filename);
	snprintf(stem, sizeof stem, "%s", img->filename);
	dot = strrchr(stem, '.');
	if (dot == stem || (dot != NULL && strchr(dot, '/') != NULL))
		dot = NULL;
	if (dot != NULL)
		*dot = '\0';
	if (!(strcmp(ow, "true") == 0 || strcmp(ow, "1") == 0))
		for (i = 1; stat(path, &st) == 0; i++) {
			if (S_ISREG(st.st_mode) && upload_same(path, img)) {
				dup = 1;
				break;
			}
			if (snprintf(name, sizeof name, "%s (%d)%s", stem, i,
				dot != NULL ? strrchr(img->filename, '.')
					    : "") >= (int)sizeof name ||
			    snprintf(path, sizeof path, "%s/%s", folder,
				name) >= (int)sizeof path) {
				rc = 400;
				goto out;
			}
		}
	if (!dup) {
		if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			 0644)) == -1) {
			rc = 500;
			goto out;
		}
		if (write(fd, img->data, img->len) != (ssize_t)img->len) {
			close(fd);
			rc = 500;
			goto out;
		}
		close(fd);
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", name);
	cJSON_AddStringToObject(o, "subfolder", sub);
	cJSON_AddStringToObject(o, "type", has_type ? type : "input");
	http_reply_json(req, 200, o);
out:
	free(type);
	free(sub);
	free(ow);
	return (rc);
}

int
route_upload_image(struct evhttp_request *req, cJSON *body)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const char	*ct = evhttp_find_header(
		 evhttp_request_get_input_headers(req), "Content-Type");
	struct rp_form	 f;
	size_t		 len = evbuffer_get_length(in);
	int		 rc;

	(void)body;
	if (rp_form_parse(ct,
		len > 0 ? (const char *)evbuffer_pullup(in, -1) : "", len,
		&f) == -1) {
		rp_form_free(&f);
		return (500);
	}
	rc = upload_save(req, &f);
	rp_form_free(&f);
	return (rc);
}
