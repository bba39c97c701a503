/*
 * A small unit-test harness: a table of tests per suite, assertions that
 * print both sides and the place, and a runner (tests/unit/main.c) that runs
 * one suite or all of them. A failed assertion ends its test, and a test
 * that made no check at all fails too; the runner counts failures and
 * exits non-zero if any.
 */
#ifndef COMFYQ_UNIT_H
#define COMFYQ_UNIT_H

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

struct unit_test {
	const char *name;
	void (*fn)(void);
};

struct unit_suite {
	const char	       *name;
	const struct unit_test *tests;
};

extern jmp_buf unit_jmp;
extern int     unit_checks;

void unit_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
const char   *unit_data(const char *name);
struct cJSON *unit_json(const char *name);
int	      unit_run(const char *suite, const struct unit_test *t);
int	      unit_corpus(const char *name, int tabbed,
	      void (*fn)(const char *want, const char *text, size_t len, void *arg),
	      void *arg);

#define ASSERT_TRUE(x)                                                         \
	do {                                                                   \
		unit_checks++;                                                 \
		if (!(x))                                                      \
			unit_fail(__FILE__, __LINE__, "expected %s", #x);      \
	} while (0)
#define ASSERT_EQ(a, b)                                                        \
	do {                                                                   \
		long long _a = (long long)(a), _b = (long long)(b);            \
		unit_checks++;                                                 \
		if (_a != _b)                                                  \
			unit_fail(__FILE__, __LINE__,                          \
			    "%s == %s: %lld != %lld", #a, #b, _a, _b);         \
	} while (0)
#define ASSERT_DBL_EQ(a, b)                                                    \
	do {                                                                   \
		double _a = (a), _b = (b);                                     \
		unit_checks++;                                                 \
		if (_a != _b)                                                  \
			unit_fail(__FILE__, __LINE__, "%s == %s: %g != %g",    \
			    #a, #b, _a, _b);                                   \
	} while (0)
#define ASSERT_STREQ(a, b)                                                     \
	do {                                                                   \
		const char *_a = (a), *_b = (b);                               \
		unit_checks++;                                                 \
		if (_a == NULL || _b == NULL || strcmp(_a, _b) != 0)           \
			unit_fail(__FILE__, __LINE__,                          \
			    "%s == %s: \"%s\" != \"%s\"", #a, #b,              \
			    _a ? _a : "(null)", _b ? _b : "(null)");           \
	} while (0)

#endif
