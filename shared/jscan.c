/*
 * The top-level object scan (see jscan.h). jscan_next returns 1 with a
 * member, 0 at the object's end, -1 when the text is not an object of
 * that shape; a caller that gets -1 parses the whole text as before.
 */
#include <string.h>

#include "jscan.h"

static const char *
jscan_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return (p);
}

/*
 * Past the string that starts at p (on its '"'), or NULL: the next '"'
 * not escaped, that is after an even run of backslashes.
 */
static const char *
jscan_string(const char *p, const char *end)
{
	const char *q, *b;

	for (p++; (q = memchr(p, '"', (size_t)(end - p))) != NULL; p = q + 1) {
		for (b = q; b > p && b[-1] == '\\'; b--)
			;
		if ((q - b) % 2 == 0)
			return (q + 1);
	}
	return (NULL);
}

/* The bytes a container's scan stops at. */
static const unsigned char jscan_stop[256] = {
	['"'] = 1,
	['{'] = 1,
	['}'] = 1,
	['['] = 1,
	[']'] = 1,
};

/* Past the value that starts at p, or NULL. Nesting is bounded. */
static const char *
jscan_value(const char *p, const char *end)
{
	char stack[256];
	int  depth = 0;

	if (p == end)
		return (NULL);
	if (*p == '"')
		return (jscan_string(p, end));
	if (*p != '{' && *p != '[') { /* a number, true, false, null */
		while (p < end && *p != ',' && *p != '}' && *p != ']' &&
		    *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
			if (*p == '"' || *p == '{' || *p == '[' || *p == ':')
				return (NULL);
			p++;
		}
		return (p);
	}
	while (p < end) {
		if (!jscan_stop[(unsigned char)*p]) {
			p++;
			continue;
		}
		switch (*p) {
		case '"':
			if ((p = jscan_string(p, end)) == NULL)
				return (NULL);
			continue;
		case '{':
		case '[':
			if (depth == (int)sizeof stack)
				return (NULL);
			stack[depth++] = *p == '{' ? '}' : ']';
			break;
		case '}':
		case ']':
			if (depth == 0 || stack[--depth] != *p)
				return (NULL);
			if (depth == 0)
				return (p + 1);
			break;
		}
		p++;
	}
	return (NULL);
}

/* Starts a scan of text, which must hold one object. 0, or -1. */
int
jscan_open(struct jscan *s, const char *text, size_t len)
{
	s->end = text + len;
	s->p = jscan_ws(text, s->end);
	s->first = 1;
	if (s->p == s->end || *s->p != '{')
		return (-1);
	s->p++;
	return (0);
}

int
jscan_next(struct jscan *s, struct jscan_member *m)
{
	const char *p = jscan_ws(s->p, s->end), *k;

	if (p == s->end)
		return (-1);
	if (*p == '}') {
		s->p = p + 1;
		return (0);
	}
	if (!s->first) {
		if (*p != ',')
			return (-1);
		p = jscan_ws(p + 1, s->end);
	}
	s->first = 0;
	if (p == s->end || *p != '"' || (k = jscan_string(p, s->end)) == NULL)
		return (-1);
	m->mem = p;
	m->key = p + 1;
	m->klen = (size_t)(k - p - 2);
	p = jscan_ws(k, s->end);
	if (p == s->end || *p != ':')
		return (-1);
	m->val = jscan_ws(p + 1, s->end);
	if ((m->vend = jscan_value(m->val, s->end)) == NULL)
		return (-1);
	s->p = m->vend;
	return (1);
}

/*
 * The top-level member whose key is written exactly key (no escapes):
 * 1 with it in m, 0 when the object has none, -1 when the scan failed.
 */
int
jscan_find(
    const char *text, size_t len, const char *key, struct jscan_member *m)
{
	struct jscan s;
	size_t	     kl = strlen(key);
	int	     rc;

	if (jscan_open(&s, text, len) == -1)
		return (-1);
	while ((rc = jscan_next(&s, m)) == 1)
		if (m->klen == kl && memcmp(m->key, key, kl) == 0)
			return (1);
	return (rc);
}
