/*
 * A minimal HTTP/1.1 client for the benchmarks that talk to
 * comfyq-scheduler: one request at a time on a keep-alive connection, and
 * Server-Sent Events streams read frame by frame, many at once. Any
 * failure but a refused connect is fatal (bench_die).
 */
#ifndef COMFYQ_BENCHHTTP_H
#define COMFYQ_BENCHHTTP_H

#include <stddef.h>

#define RAW_MAX	 8192
#define BODY_MAX 16384

/* An SSE connection: raw bytes, de-chunked body, the frames seen. */
struct sc {
	int fd, hdr, status, chunked, cst; /* cst: 0 size, 1 data, 2 CRLF */
	long long left;
	size_t	  rlen, blen;
	int	  frames, terminal;
	char	  term_id[48];
	char	  raw[RAW_MAX], body[BODY_MAX];
};

int  free_port(void);
int  http_connect(int port);
void write_all(int fd, const char *p, size_t n);
int  http_call(int fd, const char *req, char *body, size_t bodylen);
int  sc_open(struct sc *s, int port, const char *path);
void sc_close(struct sc *s);
int  sc_read(struct sc *s);
int  sc_wait(struct sc *cs, int n, int (*pred)(const struct sc *), int ms);
int  sc_attached(const struct sc *s);
int  sc_got_frame(const struct sc *s);

#endif
