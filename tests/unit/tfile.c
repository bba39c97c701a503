/* Test files with a size and an age (see tfile.h). */
#include <sys/stat.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tfile.h"
#include "unit.h"

/* dir/rel, in one of a few rotating buffers. */
const char *
tfile_path(const char *dir, const char *rel)
{
	static char buf[8][1024];
	static int  n;

	n = (n + 1) % 8;
	snprintf(buf[n], sizeof buf[n], "%s/%s", dir, rel);
	return (buf[n]);
}

/* Sets the mtime of path (a symlink itself, not its target) secs ago. */
void
tfile_age(const char *path, long long secs)
{
	struct timespec ts[2];

	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - secs;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	ASSERT_EQ(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

/* Creates path with size bytes, secs old. */
void
tfile_write(const char *path, size_t size, long long secs)
{
	FILE *f = fopen(path, "w");
	char  buf[512];

	if (f == NULL)
		unit_fail(__FILE__, __LINE__, "cannot create %s", path);
	memset(buf, 'x', sizeof buf);
	while (size > 0) {
		size_t n = size < sizeof buf ? size : sizeof buf;

		fwrite(buf, 1, n, f);
		size -= n;
	}
	ASSERT_EQ(fclose(f), 0);
	tfile_age(path, secs);
}

int
tfile_exists(const char *path)
{
	struct stat st;

	return (lstat(path, &st) == 0);
}
