/* Helpers and backoff. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "unit.h"
#include "util.h"

static void
test_backoff_bounds(void)
{
	struct backoff b;
	long long      d, prev_cap = 0;
	int	       i;

	/* Attempt n waits in [d/2, d) with d = min(max, base * 2^n). */
	ASSERT_EQ(backoff_delay(100, 5000, 0, 0.0), 50);
	ASSERT_EQ(backoff_delay(100, 5000, 0, 0.999999), 99);
	ASSERT_EQ(backoff_delay(100, 5000, 3, 0.0), 400);
	ASSERT_EQ(backoff_delay(100, 5000, 10, 0.0), 2500);
	ASSERT_EQ(backoff_delay(100, 5000, 10, 0.999999), 4999);
	ASSERT_EQ(backoff_delay(100, 5000, 1000, 0.5), 3750);
	backoff_init(&b, 100, 5000);
	for (i = 0; i < 20; i++) {
		long long cap = 100LL << (i < 6 ? i : 6);

		if (cap > 5000)
			cap = 5000;
		d = backoff_next(&b);
		ASSERT_TRUE(d >= cap / 2 && d < cap);
		ASSERT_TRUE(cap >= prev_cap);
		prev_cap = cap;
	}
	backoff_reset(&b);
	d = backoff_next(&b);
	ASSERT_TRUE(d >= 50 && d < 100);
}

static void
test_parse_numbers(void)
{
	long long v;
	double	  d;

	ASSERT_EQ(parse_ll("42", 0, 100, &v), 0);
	ASSERT_EQ(v, 42);
	ASSERT_EQ(parse_ll("101", 0, 100, &v), -1);
	ASSERT_EQ(parse_ll("4x", 0, 100, &v), -1);
	ASSERT_EQ(parse_ll("", 0, 100, &v), -1);
	ASSERT_EQ(parse_ll("99999999999999999999", 0, 100, &v), -1);
	ASSERT_EQ(parse_double("0.25", 0, 1, &d), 0);
	ASSERT_DBL_EQ(d, 0.25);
	ASSERT_EQ(parse_double("nan", 0, 1, &d), -1);
	ASSERT_EQ(parse_double("inf", 0, 1e308, &d), -1);
}

static void
test_uuid_and_random(void)
{
	char   a[UUID_LEN], b[UUID_LEN];
	double r;
	int    i;

	uuid4(a);
	uuid4(b);
	ASSERT_EQ(strlen(a), 36);
	ASSERT_TRUE(strcmp(a, b) != 0);
	ASSERT_TRUE(a[14] == '4');
	ASSERT_TRUE(strchr("89ab", a[19]) != NULL);
	for (i = 0; i < 1000; i++) {
		r = rand_unit();
		ASSERT_TRUE(r >= 0 && r < 1);
	}
}

static void
test_file_slurp(void)
{
	char   err[256], *p;
	size_t len;

	p = file_slurp(
	    unit_data("specs/good.txt"), 1 << 20, &len, err, sizeof err);
	ASSERT_TRUE(p != NULL);
	ASSERT_EQ(strlen(p), len);
	free(p);
	p = file_slurp(unit_data("specs/good.txt"), 10, &len, err, sizeof err);
	ASSERT_TRUE(p == NULL);
	ASSERT_TRUE(strstr(err, "larger than 10 bytes") != NULL);
	p = file_slurp("/nonexistent/x", 10, &len, err, sizeof err);
	ASSERT_TRUE(p == NULL);
	ASSERT_TRUE(strstr(err, "No such file") != NULL);
	p = file_slurp("/tmp", 10, &len, err, sizeof err);
	ASSERT_TRUE(p == NULL);
	ASSERT_TRUE(strstr(err, "not a regular file") != NULL);
}

const struct unit_test test_util[] = {
	{ "backoff_bounds", test_backoff_bounds },
	{ "parse_numbers", test_parse_numbers },
	{ "uuid_and_random", test_uuid_and_random },
	{ "file_slurp", test_file_slurp },
	{ NULL, NULL },
};
