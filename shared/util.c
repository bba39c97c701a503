/*
 * Helpers (see util.h). Randomness comes from getrandom(2) into a per-thread
 * xorshift state, so ids differ across processes started in the same
 * millisecond and calls stay cheap.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "util.h"

long long
clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

long long
clock_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

long long
clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

uint64_t
rand_u64(void)
{
	static _Thread_local uint64_t state;
	uint64_t		      x;

	if (state == 0) {
		if (getrandom(&state, sizeof state, 0) != sizeof state)
			state = (uint64_t)clock_mono_ms() ^
			    ((uint64_t)getpid() << 32);
		if (state == 0)
			state = 0x9e3779b97f4a7c15ULL;
	}
	/* xorshift64* */
	x = state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	state = x;
	return (x * 0x2545f4914f6cdd1dULL);
}

/* Returns a uniform double in [0, 1). */
double
rand_unit(void)
{
	return ((double)(rand_u64() >> 11) / 9007199254740992.0);
}

void
uuid4(char out[UUID_LEN])
{
	uint64_t hi = rand_u64(), lo = rand_u64();

	hi = (hi & ~0xf000ULL) | 0x4000ULL;
	lo = (lo & ~(3ULL << 62)) | (2ULL << 62);
	snprintf(out, UUID_LEN, "%08x-%04x-%04x-%04x-%012llx",
	    (unsigned)(hi >> 32), (unsigned)((hi >> 16) & 0xffff),
	    (unsigned)(hi & 0xffff), (unsigned)(lo >> 48),
	    (unsigned long long)(lo & 0xffffffffffffULL));
}

/*
 * Reads a whole file of at most max bytes into a NUL-terminated buffer the
 * caller frees. Returns NULL with the reason in err.
 */
char *
file_slurp(const char *path, size_t max, size_t *lenp, char *err, size_t errlen)
{
	struct stat st;
	char	   *buf = NULL;
	size_t	    len = 0, cap;
	ssize_t	    n;
	int	    fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return (NULL);
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	if ((size_t)st.st_size > max) {
		snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
		goto fail;
	}
	cap = (size_t)st.st_size + 1;
	if ((buf = malloc(cap)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	while ((n = read(fd, buf + len, cap - len)) > 0) {
		len += (size_t)n;
		if (len == cap) {
			/* The file grew after fstat. */
			snprintf(err, errlen, "%s: larger than %zu bytes", path,
			    cap - 1);
			goto fail;
		}
	}
	if (n == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	buf[len] = '\0';
	close(fd);
	if (lenp != NULL)
		*lenp = len;
	return (buf);
fail:
	free(buf);
	close(fd);
	return (NULL);
}

/* Parses a whole decimal integer in min..max. Returns 0 or -1. */
int
parse_ll(const char *s, long long min, long long max, long long *out)
{
	char	 *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
		return (-1);
	*out = v;
	return (0);
}

/* Parses a whole finite number in min..max. Returns 0 or -1. */
int
parse_double(const char *s, double min, double max, double *out)
{
	char  *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || !isfinite(v) ||
	    v < min || v > max)
		return (-1);
	*out = v;
	return (0);
}

/*
 * Creates a directory and its missing parents (mode 0755). Returns 0, or -1
 * with "COMPONENT: reason" in err (a file in the way is "Not a directory").
 * Whether the caller may read or write it is its own check.
 */
int
mkdir_p(const char *path, char *err, size_t errlen)
{
	struct stat st;
	char	    buf[4096], *p;
	size_t	    len = strlen(path);

	if (len == 0 || len >= sizeof buf) {
		snprintf(err, errlen, "'%s': bad path", path);
		return (-1);
	}
	memcpy(buf, path, len + 1);
	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) == -1 && errno != EEXIST)
			goto fail;
		*p = '/';
	}
	if (mkdir(buf, 0755) == -1 && errno != EEXIST)
		goto fail;
	if (stat(buf, &st) == -1)
		goto fail;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		goto fail;
	}
	return (0);
fail:
	snprintf(err, errlen, "%s: %s", buf, strerror(errno));
	return (-1);
}

/* Whether needle occurs in hay, ignoring ASCII case. */
int
str_icontains(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay != '\0'; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return (1);
	return (n == 0);
}

/* Arms (or re-arms) a libevent timer to fire in ms milliseconds. */
void
timer_add_ms(struct event *ev, long long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(ev, &tv);
}

/*
 * The length (1..4) of the UTF-8 sequence at s[0..len), or 0 when none
 * starts there (RFC 3629: shortest form, no surrogates, at most U+10FFFF).
 */
size_t
utf8_len(const unsigned char *s, size_t len)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t	      n, k;

	if (len == 0)
		return (0);
	if (s[0] < 0x80)
		return (1);
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		if (s[0] == 0xe0)
			lo = 0xa0; /* no overlong form */
		else if (s[0] == 0xed)
			hi = 0x9f; /* no surrogate */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		if (s[0] == 0xf0)
			lo = 0x90;
		else if (s[0] == 0xf4)
			hi = 0x8f; /* up to U+10FFFF */
	} else
		return (0);
	if (len < n || s[1] < lo || s[1] > hi)
		return (0);
	for (k = 2; k < n; k++)
		if (s[k] < 0x80 || s[k] > 0xbf)
			return (0);
	return (n);
}
