/*
 * Uploads of files to an S3 bucket (AWS S3, R2, MinIO, any S3-compatible
 * store) over httpc, on the caller's event loop: nothing blocks it. Every
 * request is signed by libcurl (CURLOPT_AWS_SIGV4) with an unsigned
 * payload ("x-amz-content-sha256: UNSIGNED-PAYLOAD", as S3 accepts; TLS
 * guards the bytes on an https endpoint). A file up to part_bytes goes up
 * in one PUT; a larger one as a multipart upload (CreateMultipartUpload,
 * UploadPart for each part_bytes of it, CompleteMultipartUpload), read
 * from the file part by part as it is sent, never whole in memory. A
 * request that fails at the transport or with 5xx, 429 or 408 is tried
 * again after a backoff, up to retries more times; any other answer is
 * final (a wrong secret, a missing bucket). A multipart upload that fails
 * or is canceled after it was created is aborted (AbortMultipartUpload)
 * in the background, so the store does not keep its parts.
 */
#ifndef COMFYQ_S3_H
#define COMFYQ_S3_H

#include <stddef.h>

#include "s3sign.h"

#define S3_PART_MIN  (5u << 20) /* S3's least part but the last */
#define S3_PARTS_MAX 10000	/* S3's most parts of one upload */

struct event_base;
struct httpc;
struct s3;
struct s3_up;

struct s3_opts {
	int    retries;	      /* a request is tried 1 + retries times */
	size_t part_bytes;    /* larger files go up in parts this size */
	long   timeout_ms;    /* one request, one part */
	long   retry_base_ms; /* the first retry's backoff (0: 500) */
};

struct s3_result {
	int	    ok;
	const char *err;      /* when !ok: what failed and S3's answer */
	int	    parts;    /* 0: one PUT */
	int	    requests; /* sent, retries included */
	long long   ms;	      /* from s3_put_file to this result */
};

typedef void (*s3_cb)(const struct s3_result *, void *);

struct s3	       *s3_new(struct event_base *base, struct httpc *h,
		 const struct s3_target *t, const struct s3_opts *o);
void			s3_free(struct s3 *s);
const struct s3_target *s3_target(const struct s3 *s);
struct s3_up *s3_put_file(struct s3 *s, const char *key, int fd, size_t len,
    const char *content_type, s3_cb cb, void *arg);
void	      s3_cancel(struct s3_up *up);
int	      s3_pending(const struct s3 *s);

#endif
