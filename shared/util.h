/*
 * Small helpers every program needs: clocks, randomness, ids, bounded file
 * reads, strict number parsing and UTF-8.
 */
#ifndef COMFYQ_UTIL_H
#define COMFYQ_UTIL_H

#include <stddef.h>
#include <stdint.h>

struct event;

#define UUID_LEN 37 /* 36 characters and the NUL */

long long clock_wall_ms(void);
long long clock_mono_ms(void);
long long clock_mono_us(void);
uint64_t  rand_u64(void);
double	  rand_unit(void);
void	  uuid4(char out[UUID_LEN]);
char	 *file_slurp(
	const char *path, size_t max, size_t *lenp, char *err, size_t errlen);
int    parse_ll(const char *s, long long min, long long max, long long *out);
int    parse_double(const char *s, double min, double max, double *out);
int    mkdir_p(const char *path, char *err, size_t errlen);
int    str_icontains(const char *hay, const char *needle);
void   timer_add_ms(struct event *ev, long long ms);
size_t utf8_len(const unsigned char *s, size_t len);

#endif
