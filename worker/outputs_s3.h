/*
 * store s3: what the worker's outputs need of shared/s3.h. The settings
 * become a bucket target (the secret from s3-secret-key or the file
 * s3-secret-key-file), an output gets its object key, and a stored
 * object's record gets the bucket, the key and a presigned GET URL.
 */
#ifndef COMFYQ_OUTPUTS_S3_H
#define COMFYQ_OUTPUTS_S3_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "s3.h"

struct out_file;
struct worker_cfg;

int output_s3_target(
    const struct worker_cfg *c, struct s3_target *t, char *err, size_t errlen);
int   output_s3_check(const struct worker_cfg *c, char *err, size_t errlen);
void  output_s3_opts(const struct worker_cfg *c, struct s3_opts *o);
char *output_s3_key(const char *prefix, const char *jid, const char *stored);
void  output_s3_record(const struct s3_target *t, const char *key,
     long long presign_s, cJSON *rec);
void  output_s3_unstage(const char *dir, const char *jid);

#endif
