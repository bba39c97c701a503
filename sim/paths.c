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

/*
 * os.path.normpath for a path; keeps it relative if it was. One pass: each
 * component is appended to the output, ".." takes the last one back off
 * (or stays, leading a relative path; at the root it is dropped).
 */
void
path_norm(const char *in, char *out, size_t len)
{
	size_t	    n = strlen(in), o = 0, base, k, last;
	char	    stackbuf[512];
	char	   *t = n + 2 <= sizeof stackbuf ? stackbuf : xmalloc(n + 2);
	const char *p = in, *q;
	int	    ncomp = 0;

	if (*in == '/')
		t[o++] = '/';
	base = o;
	for (; *p != '\0'; p = *q != '\0' ? q + 1 : q) {
		for (q = p; *q != '\0' && *q != '/'; q++)
			;
		k = (size_t)(q - p);
		if (k == 0 || (k == 1 && p[0] == '.'))
			continue;
		if (k == 2 && p[0] == '.' && p[1] == '.') {
			for (last = o; last > base && t[last - 1] != '/';
			     last--)
				;
			if (ncomp > 0 &&
			    !(o - last == 2 && t[last] == '.' &&
				t[last + 1] == '.')) {
				o = last > base ? last - 1 : base;
				ncomp--;
				continue;
			}
			if (base > 0)
				continue; /* "/.." is "/" */
		}
		if (ncomp > 0)
			t[o++] = '/';
		memcpy(t + o, p, k);
		o += k;
		ncomp++;
	}
	t[o] = '\0';
	snprintf(out, len, "%s", o > 0 ? t : ".");
	if (t != stackbuf)
		free(t);
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
