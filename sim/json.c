/*
 * json_print(): the bytes cJSON_PrintUnformatted() makes of a tree, made
 * faster. Every reply and WebSocket event of the sim goes through one of
 * the two; cJSON prints each number with sprintf("%1.15g") and checks it
 * with sscanf, which made number printing most of the cost of a small
 * event (timestamps, counts). Here integers (integral values below 1e15,
 * which "%1.15g" and cJSON's "%d" both print as their plain digits) are
 * printed directly; any other number (a fraction, -0, huge values, NaN)
 * is printed by cJSON itself (cJSON_PrintUnformatted of that one item), so
 * the output is byte for byte cJSON's in every case. Strings are escaped
 * as cJSON escapes them: \" \\ \b \f \n \r \t, other bytes below 0x20 as
 * \u00xx (lowercase hex), everything else (UTF-8 too) as it is. A tree
 * cJSON would refuse to print (an invalid item, a raw item without text)
 * falls back to cJSON, which answers as it answers. tests/sim's
 * test_sim_api compares the two on a corpus of trees.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "xmalloc.h"

struct jbuf {
	char  *p;
	size_t len, cap;
};

static void
jb_grow(struct jbuf *b, size_t more)
{
	if (b->len + more + 1 <= b->cap)
		return;
	while (b->len + more + 1 > b->cap)
		b->cap = b->cap < 256 ? 256 : b->cap * 2;
	b->p = xrealloc(b->p, b->cap);
}

static void
jb_put(struct jbuf *b, const char *s, size_t n)
{
	jb_grow(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
jb_str(struct jbuf *b, const char *s)
{
	static const char    hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t		     run;
	char		     e[6];

	jb_put(b, "\"", 1);
	if (s == NULL) {
		jb_put(b, "\"", 1);
		return;
	}
	while (*u != '\0') {
		for (run = 0; u[run] >= 0x20 && u[run] != '"' && u[run] != '\\';
		     run++)
			;
		jb_put(b, (const char *)u, run);
		u += run;
		if (*u == '\0')
			break;
		e[0] = '\\';
		switch (*u) {
		case '"':
		case '\\':
			e[1] = (char)*u;
			break;
		case '\b':
			e[1] = 'b';
			break;
		case '\f':
			e[1] = 'f';
			break;
		case '\n':
			e[1] = 'n';
			break;
		case '\r':
			e[1] = 'r';
			break;
		case '\t':
			e[1] = 't';
			break;
		default:
			memcpy(e + 1, "u00", 3);
			e[4] = hex[*u >> 4];
			e[5] = hex[*u & 15];
			jb_put(b, e, 6);
			u++;
			continue;
		}
		jb_put(b, e, 2);
		u++;
	}
	jb_put(b, "\"", 1);
}

/* An integer cJSON prints as its digits: 0 when it is not one. */
static int
jb_int(struct jbuf *b, double d)
{
	char		   t[24];
	int		   k = (int)sizeof t;
	unsigned long long v;

	if (!(d > -1e15 && d < 1e15) || d != floor(d) || (d == 0 && signbit(d)))
		return (0);
	v = (unsigned long long)(d < 0 ? -d : d);
	do
		t[--k] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	if (d < 0)
		t[--k] = '-';
	jb_put(b, t + k, sizeof t - (size_t)k);
	return (1);
}

static int
jb_value(struct jbuf *b, const cJSON *it)
{
	const cJSON *c;
	char	    *s;

	switch (it->type & 0xff) {
	case cJSON_NULL:
		jb_put(b, "null", 4);
		return (0);
	case cJSON_False:
		jb_put(b, "false", 5);
		return (0);
	case cJSON_True:
		jb_put(b, "true", 4);
		return (0);
	case cJSON_Number:
		if (jb_int(b, it->valuedouble))
			return (0);
		/* cJSON prints a lone number without its key or siblings */
		if ((s = cJSON_PrintUnformatted(it)) == NULL)
			return (-1);
		jb_put(b, s, strlen(s));
		cJSON_free(s);
		return (0);
	case cJSON_String:
		jb_str(b, it->valuestring);
		return (0);
	case cJSON_Raw:
		if (it->valuestring == NULL)
			return (-1);
		jb_put(b, it->valuestring, strlen(it->valuestring));
		return (0);
	case cJSON_Array:
		jb_put(b, "[", 1);
		for (c = it->child; c != NULL; c = c->next) {
			if (jb_value(b, c) == -1)
				return (-1);
			if (c->next != NULL)
				jb_put(b, ",", 1);
		}
		jb_put(b, "]", 1);
		return (0);
	case cJSON_Object:
		jb_put(b, "{", 1);
		for (c = it->child; c != NULL; c = c->next) {
			jb_str(b, c->string);
			jb_put(b, ":", 1);
			if (jb_value(b, c) == -1)
				return (-1);
			if (c->next != NULL)
				jb_put(b, ",", 1);
		}
		jb_put(b, "}", 1);
		return (0);
	default:
		return (-1);
	}
}

/* cJSON_PrintUnformatted(j)'s bytes, malloc'd (free() them); NULL where
 * cJSON answers NULL. *len gets the length when len is not NULL. */
char *
json_print(const cJSON *j, size_t *len)
{
	struct jbuf b = { NULL, 0, 0 };
	char	   *s;

	if (j == NULL)
		return (NULL);
	if (jb_value(&b, j) == -1) {
		free(b.p);
		if ((s = cJSON_PrintUnformatted(j)) != NULL && len != NULL)
			*len = strlen(s);
		return (s);
	}
	jb_grow(&b, 0);
	b.p[b.len] = '\0';
	if (len != NULL)
		*len = b.len;
	return (b.p);
}
