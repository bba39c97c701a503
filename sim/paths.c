/*
 * Paths as ComfyUI's Python sees them: os.path.normpath (lexical, ".."
 * folded), os.path.join (an absolute second part wins), the
 * commonpath(...) == root check that keeps /view, /upload/image and
 * SaveImage inside their folders (a check on the path, not on the
 * resolved path, as in ComfyUI), and the " [output]" annotations of file
 * names (folder_paths.annotated_filepath).
 */
#include <sys/stat.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "xmalloc.h"

/* os.path.normpath for a path; keeps it relative if it was. */
void
path_norm(const char *in, char *out, size_t len)
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

/* os.path.commonpath((root, path)) == root, both absolute and normal. */
int
path_inside(const char *root, const char *path)
{
	size_t n = strlen(root);

	if (strcmp(root, "/") == 0)
		return (1);
	return (
	    strncmp(root, path, n) == 0 && (path[n] == '\0' || path[n] == '/'));
}

/* os.path.join(dir, name) then abspath. */
void
path_join(const char *dir, const char *name, char *out, size_t len)
{
	char tmp[PATH_MAX * 2];

	if (name[0] == '/')
		snprintf(tmp, sizeof tmp, "%s", name);
	else
		snprintf(tmp, sizeof tmp, "%s/%s", dir, name);
	path_norm(tmp, out, len);
}

/* folder_paths.annotated_filepath(): "x.png [output]" picks the folder. */
int
path_annotated(const char *name, const char *def, char *out, size_t len)
{
	static const struct {
		const char *tag;
		const char *dir;
	} tags[] = { { "[output]", sim.output_dir },
		{ "[input]", sim.input_dir }, { "[temp]", sim.temp_dir } };
	char   base[PATH_MAX];
	size_t i, n = strlen(name), t;

	for (i = 0; i < 3; i++) {
		t = strlen(tags[i].tag);
		if (n >= t && strcmp(name + n - t, tags[i].tag) == 0) {
			snprintf(base, sizeof base, "%.*s",
			    (int)(n > t ? n - t - 1 : 0), name);
			path_join(tags[i].dir, base, out, len);
			return (0);
		}
	}
	path_join(def, name, out, len);
	return (0);
}

/*
 * mkdir -p: 1 when it made path itself (so the folder is new and empty),
 * 0 when path was there, -1 (errno) on failure. It tries the deepest
 * folder first and climbs only on ENOENT, so a folder whose parent exists
 * costs one mkdir, not one per component.
 */
int
path_mkdirs(const char *path)
{
	char  tmp[PATH_MAX];
	char *slash;

	if (mkdir(path, 0755) == 0)
		return (1);
	if (errno == EEXIST)
		return (0);
	if (errno != ENOENT)
		return (-1);
	snprintf(tmp, sizeof tmp, "%s", path);
	while ((slash = strrchr(tmp, '/')) != NULL && slash[1] == '\0')
		*slash = '\0'; /* trailing slashes */
	if ((slash = strrchr(tmp, '/')) == NULL || slash == tmp)
		return (-1);
	*slash = '\0';
	if (path_mkdirs(tmp) == -1)
		return (-1);
	if (mkdir(path, 0755) == 0)
		return (1);
	return (errno == EEXIST ? 0 : -1);
}
