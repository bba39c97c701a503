/*
 * File cleanup (see janitor_clean.h). The walk is an explicit stack of open
 * directories, so it can stop after any entry and go on at the next tick:
 * clean_step examines at most `budget` entries and returns, and a tree of a
 * million files costs many short steps, never one long stall.
 *
 * Safety rests on file descriptors, not path strings. Each named folder is
 * resolved once, at start (realpath: the operator's own symlinks above it
 * are taken as they are then), and at the start of every pass opened from
 * "/" one component at a time, each with O_NOFOLLOW | O_DIRECTORY, so a
 * parent swapped for a symlink later is refused, never followed. Everything
 * below it is reached with fstatat(AT_SYMLINK_NOFOLLOW),
 * openat(O_NOFOLLOW|O_DIRECTORY) and unlinkat relative to the open parent.
 * A symlink is never followed and never deleted (its target, wherever it
 * is, is left alone); a directory on another filesystem (a mount point) is
 * not entered; a directory swapped for something else between the stat and
 * the open is noticed (device and inode must match) and skipped.
 *
 * The open directories are kept from one step to the next, and an open
 * directory goes with its inode wherever it is moved. So every step that
 * resumes a walk first checks the chain again: the root path, opened as
 * above, must still be the open root, and each open directory's name in
 * its open parent must still be that directory (no symlink, same device and
 * inode). From the first broken link on, the walk drops those directories
 * without removing anything in them. A directory is removed only while its
 * name still names it. nftw(3) works on path strings and follows the tree
 * as it changes, which is why it is not used.
 *
 * A regular file goes when its mtime is older than its folder's age and no
 * running job needs it. A directory goes when it is empty after its walk and
 * was not modified for the age when the walk entered it; one that gets a new
 * entry meanwhile stays (rmdir fails), and the named folder itself never goes.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "janitor_clean.h"
#include "janitor_inuse.h"
#include "log.h"
#include "xmalloc.h"

#define CLEAN_DIRS_MAX	16
#define CLEAN_DEPTH_MAX 32

struct clean_root {
	char	       *path; /* as configured, for messages */
	char	       *real; /* resolved at start: what the walk opens */
	enum clean_kind kind;
};

struct clean_frame {
	DIR   *dir;
	size_t rellen; /* length of clean.rel naming this directory */
	time_t mtime;  /* the directory's mtime when the walk entered it */
	dev_t  dev;    /* the directory, as the walk entered it */
	ino_t  ino;
	char   name[256]; /* its name in its parent, for the rmdir */
};

struct clean {
	struct clean_root  roots[CLEAN_DIRS_MAX];
	size_t		   nroots;
	size_t		   next; /* the root the walk opens next */
	struct clean_frame stack[CLEAN_DEPTH_MAX];
	int		   depth; /* 0: between two roots */
	dev_t		   dev;	  /* the filesystem of the root being walked */
	enum clean_kind	   kind;
	int		   warned;	  /* errors logged in this pass */
	char		   rel[PATH_MAX]; /* the entry, relative to its root */
};

static const char *const clean_kind_names[] = {
	[CLEAN_OUTPUT] = "output",
	[CLEAN_TEMP] = "temp",
	[CLEAN_INPUT] = "input",
};

const char *
clean_kind_name(enum clean_kind k)
{
	return (clean_kind_names[k]);
}

/* clean_check_root, and the resolved path into real (PATH_MAX bytes). */
static int
clean_resolve_root(const char *path, char *real, char *err, size_t errlen)
{
	struct stat st;

	if (path[0] != '/') {
		snprintf(err, errlen, "'%s' is not an absolute path", path);
		return (-1);
	}
	if (lstat(path, &st) == -1) {
		snprintf(err, errlen, "'%s': %s", path, strerror(errno));
		return (-1);
	}
	if (S_ISLNK(st.st_mode)) {
		snprintf(err, errlen,
		    "'%s' is a symlink; name the folder itself", path);
		return (-1);
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "'%s' is not a directory", path);
		return (-1);
	}
	if (realpath(path, real) == NULL) {
		snprintf(err, errlen, "'%s': %s", path, strerror(errno));
		return (-1);
	}
	if (strcmp(real, "/") == 0) {
		snprintf(err, errlen, "'%s' is the root directory", path);
		return (-1);
	}
	return (0);
}

/*
 * Checks that path may be cleaned: absolute, an existing directory, not a
 * symlink, not / (after resolving . and ..). Returns 0, or -1 with err.
 */
int
clean_check_root(const char *path, char *err, size_t errlen)
{
	char real[PATH_MAX];

	return (clean_resolve_root(path, real, err, errlen));
}

/* Parses one "kind=path" item into root; the path loses trailing '/'. */
static int
clean_parse_item(
    const char *item, struct clean_root *root, char *err, size_t errlen)
{
	const char *eq = strchr(item, '=');
	char	   *path, real[PATH_MAX];
	size_t	    i, len;

	for (i = 0; eq != NULL && i < CLEAN_NKINDS; i++) {
		len = strlen(clean_kind_names[i]);
		if ((size_t)(eq - item) == len &&
		    strncmp(item, clean_kind_names[i], len) == 0)
			break;
	}
	if (eq == NULL || i == CLEAN_NKINDS) {
		snprintf(err, errlen,
		    "'%s': expected KIND=PATH, KIND one of output, temp, input",
		    item);
		return (-1);
	}
	path = xstrdup(eq + 1);
	len = strlen(path);
	while (len > 1 && path[len - 1] == '/')
		path[--len] = '\0';
	if (clean_resolve_root(path, real, err, errlen) == -1) {
		free(path);
		return (-1);
	}
	root->path = path;
	root->real = xstrdup(real);
	root->kind = (enum clean_kind)i;
	return (0);
}

/*
 * Parses and checks the clean-dirs setting: comma-separated KIND=PATH
 * items. Returns the walker, or NULL with the reason in err.
 */
struct clean *
clean_new(const char *spec, char *err, size_t errlen)
{
	struct clean *c = xcalloc(1, sizeof *c);
	char	     *copy = xstrdup(spec), *item, *save = NULL;
	size_t	      i;

	for (item = strtok_r(copy, ",", &save); item != NULL;
	     item = strtok_r(NULL, ",", &save)) {
		while (*item == ' ')
			item++;
		if (*item == '\0')
			continue;
		if (c->nroots == CLEAN_DIRS_MAX) {
			snprintf(err, errlen, "more than %d folders",
			    CLEAN_DIRS_MAX);
			goto fail;
		}
		if (clean_parse_item(item, &c->roots[c->nroots], err, errlen) ==
		    -1)
			goto fail;
		for (i = 0; i < c->nroots; i++) {
			if (strcmp(c->roots[i].real,
				c->roots[c->nroots].real) == 0) {
				snprintf(err, errlen, "'%s' is named twice",
				    c->roots[i].path);
				c->nroots++;
				goto fail;
			}
		}
		c->nroots++;
	}
	if (c->nroots == 0) {
		snprintf(err, errlen, "no folder named");
		goto fail;
	}
	free(copy);
	return (c);
fail:
	free(copy);
	clean_free(c);
	return (NULL);
}

void
clean_free(struct clean *c)
{
	size_t i;

	if (c == NULL)
		return;
	while (c->depth > 0)
		closedir(c->stack[--c->depth].dir);
	for (i = 0; i < c->nroots; i++) {
		free(c->roots[i].path);
		free(c->roots[i].real);
	}
	free(c);
}

size_t
clean_ndirs(const struct clean *c)
{
	return (c->nroots);
}

/* Whether a pass is under way (clean_step has more to do in it). */
int
clean_walking(const struct clean *c)
{
	return (c->depth > 0 || c->next > 0);
}

/* Counts an error; the first few of a pass are logged. */
static void
clean_error(struct clean *c, struct clean_stats *st, const char *what)
{
	int saved = errno;

	st->errors++;
	errno = saved;
	if (c->warned++ < 5)
		log_warn("clean: %s %s%s%s", what, c->roots[c->next - 1].path,
		    *c->rel != '\0' ? "/" : "", c->rel);
}

/* Pushes a directory opened as fd, whose stat is sb; takes fd. */
static void
clean_push(struct clean *c, int fd, const char *name, const struct stat *sb)
{
	struct clean_frame *f = &c->stack[c->depth];

	if ((f->dir = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	f->rellen = strlen(c->rel);
	f->mtime = sb->st_mtime;
	f->dev = sb->st_dev;
	f->ino = sb->st_ino;
	snprintf(f->name, sizeof f->name, "%s", name);
	c->depth++;
}

/*
 * Opens the absolute path real (no symlink, no . or .. in it) from "/", one
 * component at a time, each with O_NOFOLLOW | O_DIRECTORY: a component that
 * is now a symlink fails with ELOOP or ENOTDIR instead of being followed.
 * Returns the descriptor, or -1 with errno.
 */
static int
clean_open_path(const char *real)
{
	char	    comp[NAME_MAX + 1];
	const char *s = real;
	size_t	    len;
	int	    fd, nfd, saved;

	if ((fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return (-1);
	for (;;) {
		s += strspn(s, "/");
		if ((len = strcspn(s, "/")) == 0)
			return (fd);
		if (len > NAME_MAX) {
			close(fd);
			errno = ENAMETOOLONG;
			return (-1);
		}
		memcpy(comp, s, len);
		comp[len] = '\0';
		s += len;
		nfd = openat(
		    fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		saved = errno;
		close(fd);
		errno = saved;
		if ((fd = nfd) == -1)
			return (-1);
	}
}

static void
clean_open_root(struct clean *c, struct clean_stats *st)
{
	struct clean_root *r = &c->roots[c->next++];
	struct stat	   sb;
	int		   fd;

	c->rel[0] = '\0';
	c->kind = r->kind;
	fd = clean_open_path(r->real);
	if (fd == -1 || fstat(fd, &sb) == -1) {
		clean_error(c, st, "cannot open");
		if (fd != -1)
			close(fd);
		return;
	}
	c->dev = sb.st_dev;
	clean_push(c, fd, "", &sb);
}

/* Whether name in the open directory parent is still the directory f. */
static int
clean_same(int parent, const struct clean_frame *f)
{
	struct stat sb;

	return (fstatat(parent, f->name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(sb.st_mode) && sb.st_dev == f->dev && sb.st_ino == f->ino);
}

/*
 * Before a walk resumes: checks that the open directories still hang from
 * the root path (see the top of this file). From the first broken link on,
 * they are closed with nothing removed, and the walk goes on above them.
 */
static void
clean_verify(struct clean *c, struct clean_stats *st)
{
	struct stat sb;
	int	    k = 0, fd;

	fd = clean_open_path(c->roots[c->next - 1].real);
	if (fd != -1 && fstat(fd, &sb) == 0 && sb.st_dev == c->stack[0].dev &&
	    sb.st_ino == c->stack[0].ino)
		for (k = 1; k < c->depth; k++)
			if (!clean_same(
				dirfd(c->stack[k - 1].dir), &c->stack[k]))
				break;
	if (fd != -1)
		close(fd);
	if (k == c->depth)
		return;
	c->rel[c->stack[k].rellen] = '\0';
	st->skipped++;
	if (c->warned++ < 5)
		log_warnx(
		    "clean: %s%s%s moved or swapped during the walk; left alone",
		    c->roots[c->next - 1].path, *c->rel != '\0' ? "/" : "",
		    c->rel);
	while (c->depth > k)
		closedir(c->stack[--c->depth].dir);
}

/* Leaves the top directory; removes it when it is old and empty. */
static void
clean_pop(struct clean *c, long long age, const struct inuse *u, time_t now,
    struct clean_stats *st)
{
	struct clean_frame *f = &c->stack[--c->depth];
	int		    parent;

	closedir(f->dir);
	c->rel[f->rellen] = '\0';
	if (c->depth == 0 || f->mtime > now - age ||
	    inuse_has(u, clean_kind_names[c->kind], c->rel))
		return;
	parent = dirfd(c->stack[c->depth - 1].dir);
	if (!clean_same(parent, f))
		return;
	if (unlinkat(parent, f->name, AT_REMOVEDIR) == 0)
		st->dirs++;
	else if (errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT &&
	    errno != EBUSY)
		clean_error(c, st, "cannot remove directory");
}

/* Enters a subdirectory, unless it is a mount point or was swapped. */
static void
clean_enter(struct clean *c, int parent, const char *name,
    const struct stat *sb, struct clean_stats *st)
{
	struct stat now;
	int	    fd;

	if (sb->st_dev != c->dev || c->depth == CLEAN_DEPTH_MAX ||
	    strlen(name) >= sizeof c->stack[0].name) {
		st->skipped++;
		return;
	}
	fd = openat(
	    parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		if (errno == ENOENT)
			return;
		if (errno == ELOOP || errno == ENOTDIR) {
			st->skipped++;
			return;
		}
		clean_error(c, st, "cannot open");
		return;
	}
	if (fstat(fd, &now) == -1 || now.st_dev != sb->st_dev ||
	    now.st_ino != sb->st_ino) {
		close(fd);
		st->skipped++;
		return;
	}
	clean_push(c, fd, name, sb);
}

/* Looks at one entry of the top directory. */
static void
clean_entry(struct clean *c, const char *name, long long age,
    const struct inuse *u, time_t now, struct clean_stats *st)
{
	struct clean_frame *f = &c->stack[c->depth - 1];
	const char	   *kind = clean_kind_names[c->kind];
	struct stat	    sb;
	int		    parent = dirfd(f->dir), n;

	n = snprintf(c->rel + f->rellen, sizeof c->rel - f->rellen, "%s%s",
	    f->rellen > 0 ? "/" : "", name);
	if (n < 0 || (size_t)n >= sizeof c->rel - f->rellen) {
		c->rel[f->rellen] = '\0';
		st->skipped++;
		return;
	}
	if (fstatat(parent, name, &sb, AT_SYMLINK_NOFOLLOW) == -1) {
		if (errno != ENOENT)
			clean_error(c, st, "cannot stat");
		return;
	}
	if (S_ISDIR(sb.st_mode)) {
		if (!inuse_has(u, kind, c->rel))
			clean_enter(c, parent, name, &sb, st);
		return;
	}
	if (!S_ISREG(sb.st_mode)) {
		st->skipped++;
		return;
	}
	if (sb.st_mtime > now - age)
		return;
	if (inuse_has(u, kind, c->rel)) {
		st->kept++;
		return;
	}
	if (unlinkat(parent, name, 0) == -1) {
		if (errno != ENOENT)
			clean_error(c, st, "cannot remove");
		return;
	}
	st->files++;
	st->bytes += sb.st_size;
	log_debug("clean: removed %s/%s (%lld bytes)",
	    c->roots[c->next - 1].path, c->rel, (long long)sb.st_size);
}

/*
 * Examines up to budget entries, deleting what is due; ages are seconds per
 * kind, u the files to keep. Adds to st. Returns 1 when a pass over every
 * folder ended in this call (the next call starts a new one), else 0.
 */
int
clean_step(struct clean *c, const long long ages[CLEAN_NKINDS],
    const struct inuse *u, long long budget, struct clean_stats *st)
{
	time_t	       now = time(NULL);
	struct dirent *de;

	if (c->depth > 0)
		clean_verify(c, st);
	while (budget > 0) {
		if (c->depth == 0) {
			if (c->next == c->nroots) {
				c->next = 0;
				c->warned = 0;
				return (1);
			}
			clean_open_root(c, st);
			continue;
		}
		errno = 0;
		if ((de = readdir(c->stack[c->depth - 1].dir)) == NULL) {
			if (errno != 0)
				clean_error(c, st, "cannot read");
			clean_pop(c, ages[c->kind], u, now, st);
			continue;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		budget--;
		clean_entry(c, de->d_name, ages[c->kind], u, now, st);
	}
	return (0);
}
