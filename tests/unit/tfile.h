/*
 * Files with a chosen size and age, for the tests of the file cleanup (unit
 * and integration): mtimes are set with utimensat, never following a
 * symlink.
 */
#ifndef COMFYQ_TFILE_H
#define COMFYQ_TFILE_H

#include <stddef.h>

const char *tfile_path(const char *dir, const char *rel);
void	    tfile_write(const char *, size_t, long long);
void	    tfile_age(const char *, long long);
int	    tfile_exists(const char *);

#endif
