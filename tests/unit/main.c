/*
 * Unit test runner. `unit_tests` runs every suite; `unit_tests SUITE` runs
 * one (ctest registers one test per suite). Prints one line per test and a
 * closing "N passed, N failed" line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

extern const struct unit_test test_config[];
extern const struct unit_test test_util[];
extern const struct unit_test test_job[];
extern const struct unit_test test_rq[];
extern const struct unit_test test_worker[];
extern const struct unit_test test_workflow[];
extern const struct unit_test test_graph[];
extern const struct unit_test test_canny[];
extern const struct unit_test test_img[];
extern const struct unit_test test_inputs[];
extern const struct unit_test test_clean[];

static const struct unit_suite suites[] = {
	{ "config", test_config },
	{ "util", test_util },
	{ "job", test_job },
	{ "rq", test_rq },
	{ "worker", test_worker },
	{ "workflow", test_workflow },
	{ "graph", test_graph },
	{ "canny", test_canny },
	{ "img", test_img },
	{ "inputs", test_inputs },
	{ "clean", test_clean },
};

jmp_buf	    unit_jmp;
int	    unit_checks;
static char unit_msg[2048];

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

/* Runs one test; returns 1 when it passed. */
static int
unit_run(const char *suite, const struct unit_test *t)
{
	unit_checks = 0;
	if (setjmp(unit_jmp) != 0) {
		printf("FAIL %s.%s: %s\n", suite, t->name, unit_msg);
		return (0);
	}
	t->fn();
	printf("ok   %s.%s (%d checks)\n", suite, t->name, unit_checks);
	return (1);
}

int
main(int argc, char **argv)
{
	size_t i, j;
	int    passed = 0, failed = 0, ran = 0;

	for (i = 0; i < sizeof suites / sizeof suites[0]; i++) {
		if (argc > 1 && strcmp(argv[1], suites[i].name) != 0)
			continue;
		ran = 1;
		for (j = 0; suites[i].tests[j].name != NULL; j++) {
			if (unit_run(suites[i].name, &suites[i].tests[j]))
				passed++;
			else
				failed++;
		}
	}
	if (!ran) {
		fprintf(stderr, "unit_tests: no suite named %s\n", argv[1]);
		return (2);
	}
	printf("%d passed, %d failed\n", passed, failed);
	return (failed == 0 ? 0 : 1);
}
