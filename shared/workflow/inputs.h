/*
 * Input images as producers send them: base64 (with or without a
 * data:image/...;base64, prefix) or an http(s) URL, turned into bytes with
 * caps on everything. A URL download is blocking libcurl, meant for the
 * worker's thread pool (tpool.h); it refuses to connect to private,
 * loopback, link-local and other non-public addresses unless allowed, and
 * checks the address actually connected to, after DNS and after every
 * redirect, so a name that resolves inward is refused too.
 */
#ifndef COMFYQ_INPUTS_H
#define COMFYQ_INPUTS_H

#include <stddef.h>

#include <sys/socket.h>

struct inputs_opts {
	size_t max_bytes;     /* decoded or downloaded size */
	long   timeout_ms;    /* a whole download */
	int    max_redirects; /* followed at most */
	int    allow_private; /* URLs may reach non-public addresses */
};

extern const struct inputs_opts inputs_opts_default;

void  inputs_global_init(void);
int   inputs_is_url(const char *s);
int   inputs_base64(const char *s, size_t max, unsigned char **out, size_t *len,
      char *err, size_t errlen);
int   inputs_fetch(const char *src, const struct inputs_opts *o,
      unsigned char **out, size_t *len, char *err, size_t errlen);
int   inputs_addr_blocked(const struct sockaddr *sa);
char *inputs_base64_encode(const unsigned char *b, size_t len);

#endif
