/*
 * Backoff (see backoff.h). backoff_delay is pure so tests can check the
 * bounds for any draw; backoff_next feeds it from rand_unit().
 */
#include "backoff.h"
#include "util.h"

void
backoff_init(struct backoff *b, long long base_ms, long long max_ms)
{
	b->base_ms = base_ms < 1 ? 1 : base_ms;
	b->max_ms = max_ms < b->base_ms ? b->base_ms : max_ms;
	b->attempt = 0;
}

void
backoff_reset(struct backoff *b)
{
	b->attempt = 0;
}

/* The wait for attempt n given a draw r in [0, 1). */
long long
backoff_delay(long long base_ms, long long max_ms, int attempt, double r)
{
	long long d = base_ms;
	int	  i;

	for (i = 0; i < attempt && d < max_ms; i++)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	if (r < 0)
		r = 0;
	if (r >= 1)
		r = 0.999999;
	return (d / 2 + (long long)((double)(d - d / 2) * r));
}

long long
backoff_next(struct backoff *b)
{
	long long ms;

	ms = backoff_delay(b->base_ms, b->max_ms, b->attempt, rand_unit());
	if (b->attempt < 62)
		b->attempt++;
	return (ms);
}
