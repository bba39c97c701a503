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
uint64_t  rand_u64(void);
double	  rand_unit(void);
void	  uuid4(char[UUID_LEN]);
char	 *file_slurp(const char *, size_t, size_t *, char *, size_t);
int	  parse_ll(const char *, long long, long long, long long *);
int	  parse_double(const char *, double, double, double *);
int	  mkdir_p(const char *, char *, size_t);
int	  str_icontains(const char *, const char *);
void	  timer_add_ms(struct event *, long long);
size_t	  utf8_len(const unsigned char *, size_t);

#endif
