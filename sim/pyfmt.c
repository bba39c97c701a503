/*
 * Python's formatting and conversions, for the texts ComfyUI builds with
 * them: "Value 0 smaller than min of 1", "ckpt_name: 'x' not in ['a', 'b']",
 * "invalid literal for int() with base 10: 'abc'". JSON values come from
 * cJSON; a number that is a whole number below 2^53 counts as a Python int
 * (cJSON keeps no difference between 5 and 5.0).
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "xmalloc.h"

void
py_exc(struct pyexc *e, const char *type, const char *fmt, ...)
{
	va_list ap;

	snprintf(e->type, sizeof e->type, "%s", type);
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
}

/* repr(float): the shortest digits that read back, "5.0", "1e-05". */
void
py_float_repr(double v, char *buf, size_t len)
{
	char tmp[64];
	int  p, e;

	if (isnan(v)) {
		snprintf(buf, len, "nan");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, len, v < 0 ? "-inf" : "inf");
		return;
	}
	for (p = 1; p <= 17; p++) {
		snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	e = atoi(strchr(tmp, 'e') + 1);
	if (e < -4 || e >= 16) {
		snprintf(buf, len, "%s", tmp);
		return;
	}
	snprintf(buf, len, "%.*f", p - 1 - e > 0 ? p - 1 - e : 0, v);
	if (strchr(buf, '.') == NULL && strlen(buf) + 3 <= len)
		strcat(buf, ".0");
}

static int
py_is_int(double v)
{
	return (v == floor(v) && fabs(v) < 9007199254740992.0);
}

struct sbuf {
	char  *s;
	size_t len, cap;
};

static void
sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void
py_repr_string(struct sbuf *b, const char *s)
{
	char q = strchr(s, '\'') != NULL && strchr(s, '"') == NULL ? '"' : '\'';
	char tmp[8];

	sb_add(b, &q, 1);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\\' || c == (unsigned char)q) {
			tmp[0] = '\\';
			tmp[1] = (char)c;
			sb_add(b, tmp, 2);
		} else if (c == '\n')
			sb_str(b, "\\n");
		else if (c == '\r')
			sb_str(b, "\\r");
		else if (c == '\t')
			sb_str(b, "\\t");
		else if (c < 0x20 || c == 0x7f) {
			snprintf(tmp, sizeof tmp, "\\x%02x", c);
			sb_str(b, tmp);
		} else
			sb_add(b, (const char *)&c, 1);
	}
	sb_add(b, &q, 1);
}

static void
py_fmt(struct sbuf *b, const cJSON *v, int repr)
{
	const cJSON *c;
	char	     num[64];

	if (cJSON_IsString(v)) {
		if (repr)
			py_repr_string(b, v->valuestring);
		else
			sb_str(b, v->valuestring);
	} else if (cJSON_IsNumber(v)) {
		if (py_is_int(v->valuedouble))
			snprintf(num, sizeof num, "%.0f", v->valuedouble);
		else
			py_float_repr(v->valuedouble, num, sizeof num);
		sb_str(b, num);
	} else if (cJSON_IsTrue(v))
		sb_str(b, "True");
	else if (cJSON_IsFalse(v))
		sb_str(b, "False");
	else if (cJSON_IsArray(v)) {
		sb_str(b, "[");
		cJSON_ArrayForEach(c, v) {
			if (c != v->child)
				sb_str(b, ", ");
			py_fmt(b, c, 1);
		}
		sb_str(b, "]");
	} else if (cJSON_IsObject(v)) {
		sb_str(b, "{");
		cJSON_ArrayForEach(c, v) {
			if (c != v->child)
				sb_str(b, ", ");
			py_repr_string(b, c->string);
			sb_str(b, ": ");
			py_fmt(b, c, 1);
		}
		sb_str(b, "}");
	} else
		sb_str(b, "None");
}

char *
py_str(const cJSON *v)
{
	struct sbuf b = { NULL, 0, 0 };

	sb_add(&b, "", 0);
	py_fmt(&b, v, 0);
	return (b.s);
}

char *
py_repr(const cJSON *v)
{
	struct sbuf b = { NULL, 0, 0 };

	sb_add(&b, "", 0);
	py_fmt(&b, v, 1);
	return (b.s);
}

/* type(v).__name__ */
const char *
py_typename(const cJSON *v)
{
	if (cJSON_IsNull(v))
		return ("NoneType");
	if (cJSON_IsObject(v))
		return ("dict");
	if (cJSON_IsArray(v))
		return ("list");
	if (cJSON_IsString(v))
		return ("str");
	if (cJSON_IsBool(v))
		return ("bool");
	return (
	    cJSON_IsNumber(v) && py_is_int(v->valuedouble) ? "int" : "float");
}

/* Copies s without surrounding white space and with the underscores that
 * Python allows between digits removed. Returns -1 on a misplaced one. */
static int
py_numtext(const char *s, char *out, size_t outlen)
{
	const char *e;
	size_t	    o = 0;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	for (; s < e && o + 1 < outlen; s++) {
		if (*s == '_') {
			if (o == 0 || !isdigit((unsigned char)out[o - 1]) ||
			    s + 1 >= e || !isdigit((unsigned char)s[1]))
				return (-1);
			continue;
		}
		out[o++] = *s;
	}
	out[o] = '\0';
	return (s == e && o > 0 ? 0 : -1);
}

/* int(v). Returns 0, or -1 with the exception Python raises. */
int
py_int(const cJSON *v, double *out, struct pyexc *exc)
{
	char  t[256], *r;
	char *end;
	int   i;

	if (cJSON_IsBool(v)) {
		*out = cJSON_IsTrue(v) ? 1 : 0;
		return (0);
	}
	if (cJSON_IsNumber(v)) {
		*out = trunc(v->valuedouble);
		return (0);
	}
	if (cJSON_IsString(v)) {
		if (py_numtext(v->valuestring, t, sizeof t) == 0) {
			i = (t[0] == '+' || t[0] == '-') ? 1 : 0;
			if (t[i] != '\0' &&
			    strspn(t + i, "0123456789") == strlen(t + i)) {
				*out = strtod(t, &end);
				return (0);
			}
		}
		r = py_repr(v);
		py_exc(exc, "ValueError",
		    "invalid literal for int() with base 10: %s", r);
		free(r);
		return (-1);
	}
	py_exc(exc, "TypeError",
	    "int() argument must be a string, a bytes-like object or a real number, not '%s'",
	    py_typename(v));
	return (-1);
}

/* float(v). Returns 0, or -1 with the exception Python raises. */
int
py_float(const cJSON *v, double *out, struct pyexc *exc)
{
	char  t[256], *r, *end;
	char *p;

	if (cJSON_IsBool(v)) {
		*out = cJSON_IsTrue(v) ? 1 : 0;
		return (0);
	}
	if (cJSON_IsNumber(v)) {
		*out = v->valuedouble;
		return (0);
	}
	if (cJSON_IsString(v)) {
		if (py_numtext(v->valuestring, t, sizeof t) == 0 &&
		    strpbrk(t, "xXpP") == NULL) {
			p = t + (t[0] == '+' || t[0] == '-');
			*out = strtod(t, &end);
			if (*end == '\0' &&
			    (isdigit((unsigned char)*p) || *p == '.' ||
				isalpha((unsigned char)*p)))
				return (0);
		}
		r = py_repr(v);
		py_exc(exc, "ValueError",
		    "could not convert string to float: %s", r);
		free(r);
		return (-1);
	}
	py_exc(exc, "TypeError",
	    "float() argument must be a string or a real number, not '%s'",
	    py_typename(v));
	return (-1);
}

/* bool(v) */
int
py_truthy(const cJSON *v)
{
	if (v == NULL || cJSON_IsNull(v) || cJSON_IsFalse(v))
		return (0);
	if (cJSON_IsNumber(v))
		return (v->valuedouble != 0);
	if (cJSON_IsString(v))
		return (v->valuestring[0] != '\0');
	if (cJSON_IsArray(v) || cJSON_IsObject(v))
		return (v->child != NULL);
	return (1);
}
