/*
 * The test harness both runners share (tests/unit/main.c for unit suites,
 * tests/integration/itest.c for integration binaries): failing a test with
 * a message, finding test data, and running one test with its checks
 * counted (a test that makes none fails).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "unit.h"
#include "util.h"

jmp_buf	    unit_jmp;
int	    unit_checks;
static char unit_msg[4096];

void
unit_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	int	n;

	n = snprintf(unit_msg, sizeof unit_msg, "%s:%d: ", file, line);
	va_start(ap, fmt);
	vsnprintf(unit_msg + n, sizeof unit_msg - (size_t)n, fmt, ap);
	va_end(ap);
	longjmp(unit_jmp, 1);
}

/* Path of a file under tests/data (COMFYQ_TEST_DATA or the source tree). */
const char *
unit_data(const char *name)
{
	static char path[4096];
	const char *dir = getenv("COMFYQ_TEST_DATA");

	snprintf(
	    path, sizeof path, "%s/%s", dir ? dir : COMFYQ_TEST_DATA_DIR, name);
	return (path);
}

/* A JSON file under tests/data, parsed; the test fails if it cannot be. */
cJSON *
unit_json(const char *name)
{
	char   err[512], *text;
	cJSON *j;

	text = file_slurp(unit_data(name), 1 << 20, NULL, err, sizeof err);
	if (text == NULL)
		unit_fail(__FILE__, __LINE__, "%s", err);
	j = cJSON_Parse(text);
	free(text);
	if (j == NULL)
		unit_fail(__FILE__, __LINE__, "%s: not JSON", name);
	return (j);
}

static int
unit_hex(int c)
{
	if (c >= '0' && c <= '9')
		return (c - '0');
	if (c >= 'a' && c <= 'f')
		return (c - 'a' + 10);
	return (-1);
}

/*
 * Calls fn for each case of a corpus under tests/data: one case a line,
 * '#' lines skipped; with tabbed, "WANT<TAB>TEXT", else TEXT alone (want
 * NULL). \xNN (lower-case hex) in TEXT stands for that byte, so a case can
 * hold bytes no editor keeps (JSON has no \x escape). Returns the count.
 */
int
unit_corpus(const char *name, int				  tabbed,
    void (*fn)(const char *, const char *, size_t, void *), void *arg)
{
	char  *text, *line, *save, *tab, *o, err[512];
	size_t i;
	int    n = 0, hi, lo;

	text = file_slurp(unit_data(name), 1 << 20, NULL, err, sizeof err);
	if (text == NULL)
		unit_fail(__FILE__, __LINE__, "%s", err);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (*line == '#')
			continue;
		tab = tabbed ? strchr(line, '\t') : NULL;
		if (tabbed && tab == NULL)
			unit_fail(__FILE__, __LINE__, "%s: no tab in '%s'",
			    name, line);
		if (tab != NULL)
			*tab++ = '\0';
		else
			tab = line;
		for (i = 0, o = tab; tab[i] != '\0'; i++) {
			if (tab[i] == '\\' && tab[i + 1] == 'x' &&
			    (hi = unit_hex(tab[i + 2])) >= 0 &&
			    (lo = unit_hex(tab[i + 3])) >= 0) {
				*o++ = (char)(hi * 16 + lo);
				i += 3;
			} else
				*o++ = tab[i];
		}
		*o = '\0';
		fn(tabbed ? line : NULL, tab, (size_t)(o - tab), arg);
		n++;
	}
	free(text);
	return (n);
}

/*
 * Runs one test and prints its line; returns 1 when it passed. A test that
 * returns without one check fails: it proved nothing, and a passing line
 * would say otherwise.
 */
int
unit_run(const char *suite, const struct unit_test *t)
{
	unit_checks = 0;
	if (setjmp(unit_jmp) != 0) {
		printf("FAIL %s%s%s: %s\n", suite ? suite : "",
		    suite ? "." : "", t->name, unit_msg);
		fflush(stdout);
		return (0);
	}
	t->fn();
	if (unit_checks == 0) {
		printf("FAIL %s%s%s: made no checks (no ASSERT ran)\n",
		    suite ? suite : "", suite ? "." : "", t->name);
		fflush(stdout);
		return (0);
	}
	printf("ok   %s%s%s (%d checks)\n", suite ? suite : "",
	    suite ? "." : "", t->name, unit_checks);
	fflush(stdout);
	return (1);
}
