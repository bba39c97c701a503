/*
 * Text from Redis made fit for a terminal. A producer, a worker or anyone
 * with redis-cli can write what these lines show (a tenant, an error, a
 * worker's host), so every human-readable output passes the strings it did
 * not make through cli_safe(): a C0 control (newline and tab included),
 * DEL, a C1 control (U+0080..U+009F, which some terminals obey) and a byte
 * that is not UTF-8 come out as \xNN; everything else, every script
 * included, as it is. --json output needs none of this: cJSON escapes.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "xmalloc.h"

#define CLI_SAFE_RING 8

/* The length of the sequence at s[0..len) to print as it is, or 0. */
static size_t
cli_safe_len(const unsigned char *s, size_t len)
{
	size_t n = utf8_len(s, len);

	if (n == 1 && (s[0] < 0x20 || s[0] == 0x7f))
		return (0);
	if (n == 2 && s[0] == 0xc2 && s[1] <= 0x9f)
		return (0);
	return (n);
}

/*
 * Returns s, or when it holds something to escape a copy with it escaped in
 * one of CLI_SAFE_RING buffers, valid until that many more calls (so one
 * printf may take several). NULL gives "".
 */
const char *
cli_safe(const char *s)
{
	static char	    *ring[CLI_SAFE_RING];
	static size_t	     cap[CLI_SAFE_RING];
	static int	     next;
	const unsigned char *p = (const unsigned char *)s;
	size_t		     len, i, n, o = 0;
	char		    *buf;

	if (s == NULL)
		return ("");
	len = strlen(s);
	for (i = 0; i < len && (n = cli_safe_len(p + i, len - i)) > 0; i += n)
		;
	if (i == len)
		return (s);
	if (cap[next] < 4 * len + 1) {
		cap[next] = 4 * len + 1;
		ring[next] = xrealloc(ring[next], cap[next]);
	}
	buf = ring[next];
	next = (next + 1) % CLI_SAFE_RING;
	memcpy(buf, s, i);
	for (o = i; i < len; i += n) {
		if ((n = cli_safe_len(p + i, len - i)) > 0) {
			memcpy(buf + o, p + i, n);
			o += n;
			continue;
		}
		/* A C1 control goes as both its bytes; anything else byte by
		 * byte. */
		n = utf8_len(p + i, len - i) == 2 ? 2 : 1;
		o += (size_t)snprintf(buf + o, 5, "\\x%02x", p[i]);
		if (n == 2)
			o += (size_t)snprintf(buf + o, 5, "\\x%02x", p[i + 1]);
	}
	buf[o] = '\0';
	return (buf);
}
