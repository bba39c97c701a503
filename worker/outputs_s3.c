/*
 * store s3 glue (see outputs_s3.h). The object key of an output is
 * <s3-prefix><job id>/<stored name>: the stored name is the one the job's
 * folder would hold (unique in the job, outputs.c), so a job's objects
 * sit together under its id. The prefix is printable ASCII without a
 * leading '/' (a key that starts with one names an empty folder on most
 * stores) or a backslash. The secret comes from s3-secret-key or, when
 * that is empty, from the file s3-secret-key-file (its first line), so it
 * need not sit in the environment or on the command line; setting both is
 * refused. An output is staged in its hidden temporary file under
 * output-dir while it is validated and uploaded, and removed after; its
 * job's folder goes once it is empty.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errout.h"
#include "outputs_s3.h"
#include "settings.h"
#include "util.h"
#include "xmalloc.h"

#define S3_SECRET_FILE_MAX 4096

/* The secret key from the settings into buf; 0, or -1 with err. */
static int
output_s3_secret(
    const struct worker_cfg *c, char *buf, size_t len, char *err, size_t errlen)
{
	char  *text;
	size_t n;

	if (*c->s3_secret_key != '\0' && *c->s3_secret_key_file != '\0')
		ERR_OUT("s3-secret-key and s3-secret-key-file: set one, not "
			"both");
	if (*c->s3_secret_key_file == '\0') {
		snprintf(buf, len, "%s", c->s3_secret_key);
		return (0);
	}
	if ((text = file_slurp(c->s3_secret_key_file, S3_SECRET_FILE_MAX, &n,
		 err, errlen)) == NULL) {
		char why[512];

		snprintf(why, sizeof why, "%s", err);
		ERR_OUT("s3-secret-key-file: %s", why);
	}
	n = strcspn(text, "\r\n");
	text[n] = '\0';
	if (n >= len) {
		explicit_bzero(text, n);
		free(text);
		ERR_OUT("s3-secret-key-file: %s: the key is over %zu bytes",
		    c->s3_secret_key_file, len - 1);
	}
	memcpy(buf, text, n + 1);
	explicit_bzero(text, n);
	free(text);
	return (0);
}

/* The bucket target of the s3-* settings; 0, or -1 with err. */
int
output_s3_target(
    const struct worker_cfg *c, struct s3_target *t, char *err, size_t errlen)
{
	char	    secret[sizeof t->secret + 1];
	const char *p;
	int	    rc;

	if (*c->s3_endpoint == '\0' || *c->s3_bucket == '\0')
		ERR_OUT("store s3: s3-endpoint and s3-bucket must be set");
	for (p = c->s3_prefix; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e || *p == '\\')
			ERR_OUT("s3-prefix: only printable ASCII without '\\', "
				"not 0x%02x",
			    (unsigned char)*p);
	if (*c->s3_prefix == '/')
		ERR_OUT("s3-prefix: must not start with '/'");
	if (output_s3_secret(c, secret, sizeof secret, err, errlen) == -1)
		return (-1);
	rc = s3_target_init(t, c->s3_endpoint, c->s3_region, c->s3_bucket,
	    c->s3_path_style, c->s3_access_key, secret, err, errlen);
	explicit_bzero(secret, sizeof secret);
	return (rc);
}

/* worker_cfg_check's part for store s3. */
int
output_s3_check(const struct worker_cfg *c, char *err, size_t errlen)
{
	struct s3_target t;
	int		 rc = output_s3_target(c, &t, err, errlen);

	explicit_bzero(&t, sizeof t);
	return (rc);
}

void
output_s3_opts(const struct worker_cfg *c, struct s3_opts *o)
{
	memset(o, 0, sizeof *o);
	o->retries = (int)c->s3_retries;
	o->part_bytes = (size_t)c->s3_part_mb << 20;
	o->timeout_ms = (long)c->s3_timeout_ms;
}

/* <prefix><jid>/<stored>; the caller frees it. */
char *
output_s3_key(const char *prefix, const char *jid, const char *stored)
{
	return (xasprintf("%s%s/%s", prefix, jid, stored));
}

/*
 * Adds where the object is to rec: bucket, object_key, and presigned_url
 * with presigned_expires_ms (ms since the epoch) when it stops working.
 */
void
output_s3_record(
    const struct s3_target *t, const char *key, long long presign_s, cJSON *rec)
{
	long long now = clock_wall_ms();
	char	 *url =
	    s3_presign_get(t, key, (time_t)(now / 1000), (long)presign_s);

	cJSON_AddStringToObject(rec, "bucket", t->bucket);
	cJSON_AddStringToObject(rec, "object_key", key);
	cJSON_AddStringToObject(rec, "presigned_url", url);
	cJSON_AddNumberToObject(rec, "presigned_expires_ms",
	    (double)((now / 1000 + presign_s) * 1000));
	free(url);
}

/* Removes <dir>/<jid>/ once the job's staged files are gone. */
void
output_s3_unstage(const char *dir, const char *jid)
{
	char *path = xasprintf("%s/%s", dir, jid);

	(void)rmdir(path); /* not empty, or gone: the janitor's cleanup */
	free(path);
}
