/*
 * Amazon S3 addressing and query-string signing: where an object of a
 * bucket lives (path-style or virtual-hosted URLs, keys URI-encoded as S3
 * wants them), and presigned GET URLs (AWS Signature Version 4 in the
 * query string, "UNSIGNED-PAYLOAD", only the host header signed). Requests
 * signed in their headers are libcurl's (CURLOPT_AWS_SIGV4, see s3.h);
 * libcurl makes no presigned URLs, so they are made here with libcrypto's
 * HMAC-SHA256 and SHA-256. Nothing here does I/O.
 */
#ifndef COMFYQ_S3SIGN_H
#define COMFYQ_S3SIGN_H

#include <stddef.h>
#include <time.h>

#define S3_PRESIGN_MAX_S 604800 /* SigV4's limit: 7 days */

/* A bucket and the credentials to reach it (s3_target_init fills it). */
struct s3_target {
	char scheme[8];	  /* http or https */
	char host[256];	  /* the endpoint's host[:port], as Host carries it */
	char region[64];  /* us-east-1; auto for R2 */
	char bucket[64];  /* 3..63 bytes */
	int  path_style;  /* 1: <endpoint>/<bucket>/<key> */
	char access[128]; /* access key id */
	char secret[256]; /* secret access key */
};

int   s3_target_init(struct s3_target *t, const char *endpoint,
      const char *region, const char *bucket, int path_style, const char *access,
      const char *secret, char *err, size_t errlen);
char *s3_url(const struct s3_target *t, const char *key, const char *query);
char *s3_presign_get(
    const struct s3_target *t, const char *key, time_t now, long expires_s);
char *s3_uri_encode(const char *s, int keep_slash);
void  s3_sha256_hex(const void *data, size_t len, char out[65]);

#endif
