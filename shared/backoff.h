/*
 * Exponential backoff with jitter, for reconnects and retries. The delay for
 * attempt n (from 0) is d = min(max, base * 2^n), and the wait is drawn from
 * [d/2, d) ("equal jitter"): never zero, so a herd of clients spreads out,
 * and never more than the cap.
 */
#ifndef COMFYQ_BACKOFF_H
#define COMFYQ_BACKOFF_H

struct backoff {
	long long base_ms;
	long long max_ms;
	int	  attempt;
};

void	  backoff_init(struct backoff *b, long long base_ms, long long max_ms);
long long backoff_next(struct backoff *b);
void	  backoff_reset(struct backoff *b);
long long backoff_delay(
    long long base_ms, long long max_ms, int attempt, double r);

#endif
