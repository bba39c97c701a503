/*
 * Unit test runner. `unit_tests` runs every suite; `unit_tests SUITE` runs
 * one (ctest registers one test per suite). Prints one line per test and a
 * closing "N passed, N failed" line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

extern const struct unit_test test_config[];
extern const struct unit_test test_util[];
extern const struct unit_test test_job[];
extern const struct unit_test test_rq[];
extern const struct unit_test test_rqfn[];
extern const struct unit_test test_errcode[];
extern const struct unit_test test_worker[];
extern const struct unit_test test_run[];
extern const struct unit_test test_workflow[];
extern const struct unit_test test_graph[];
extern const struct unit_test test_canny[];
extern const struct unit_test test_img[];
extern const struct unit_test test_inputs[];
extern const struct unit_test test_clean[];
extern const struct unit_test test_jobfiles[];
extern const struct unit_test test_confine[];
extern const struct unit_test test_bounds[];
extern const struct unit_test test_sign[];
extern const struct unit_test test_s3[];
extern const struct unit_test test_guard[];

static const struct unit_suite suites[] = {
	{ "config", test_config },
	{ "util", test_util },
	{ "job", test_job },
	{ "rq", test_rq },
	{ "rqfn", test_rqfn },
	{ "errcode", test_errcode },
	{ "worker", test_worker },
	{ "run", test_run },
	{ "workflow", test_workflow },
	{ "graph", test_graph },
	{ "canny", test_canny },
	{ "img", test_img },
	{ "inputs", test_inputs },
	{ "clean", test_clean },
	{ "jobfiles", test_jobfiles },
	{ "confine", test_confine },
	{ "bounds", test_bounds },
	{ "sign", test_sign },
	{ "s3", test_s3 },
	{ "guard", test_guard },
};

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
