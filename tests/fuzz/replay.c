/*
 * Replays inputs through a libFuzzer target without libFuzzer: a plain
 * main() that calls LLVMFuzzerTestOneInput() once per file, for each
 * argument that is a file or a folder of them (a missing folder is
 * skipped). Linked with one fuzz_<t>.c in the normal build (gcc, ASan
 * and UBSan under tests/run.sh), so ctest's fuzz.replay.<t> replays
 * tests/fuzz/seeds/<t>/ and tests/fuzz/regress/<t>/ and every crash the
 * fuzzers found stays a test. A target reports a bug by aborting (or a
 * sanitizer does); the replay prints each file's name before it runs,
 * so the log names the one that failed.
 */
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
replay_file(const char *path)
{
	FILE	*f = fopen(path, "rb");
	uint8_t *buf = NULL, *nb;
	size_t	 len = 0, cap = 0, n;

	if (f == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return (-1);
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			if ((nb = realloc(buf, cap)) == NULL) {
				fclose(f);
				free(buf);
				return (-1);
			}
			buf = nb;
		}
		if ((n = fread(buf + len, 1, cap - len, f)) == 0)
			break;
		len += n;
	}
	fclose(f);
	printf("replay: %s (%zu bytes)\n", path, len);
	fflush(stdout);
	/* A copy of exactly len bytes, so ASan sees a read past the end. */
	nb = malloc(len > 0 ? len : 1);
	if (nb == NULL) {
		free(buf);
		return (-1);
	}
	memcpy(nb, buf, len);
	free(buf);
	(void)LLVMFuzzerTestOneInput(nb, len);
	free(nb);
	return (0);
}

static int
replay_cmp(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

/* The files of a folder, in name order (the log is the same each run). */
static int
replay_dir(const char *dir, int *count)
{
	DIR	      *d = opendir(dir);
	struct dirent *e;
	struct stat    st;
	char	     **names = NULL, **nn, path[4096];
	size_t	       n = 0, i;
	int	       rc = 0;

	if (d == NULL)
		return (errno == ENOENT ? 0 : -1);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if ((nn = realloc(names, (n + 1) * sizeof *names)) == NULL)
			break;
		names = nn;
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof *names, replay_cmp);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (replay_file(path) == -1)
				rc = -1;
			(*count)++;
		}
		free(names[i]);
	}
	free(names);
	return (rc);
}

int
main(int argc, char **argv)
{
	struct stat st;
	int	    i, count = 0, rc = 0;

	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == 0 && S_ISREG(st.st_mode)) {
			if (replay_file(argv[i]) == -1)
				rc = 1;
			count++;
		} else if (replay_dir(argv[i], &count) == -1) {
			fprintf(stderr, "replay: %s: %s\n", argv[i],
			    strerror(errno));
			rc = 1;
		}
	}
	printf("replay: %d inputs, %s\n", count, rc ? "errors" : "no crash");
	return (rc);
}
