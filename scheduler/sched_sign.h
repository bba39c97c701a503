/*
 * Webhook signatures after the Standard Webhooks convention
 * (https://www.standardwebhooks.com): HMAC-SHA256 over
 * "<webhook-id>.<webhook-timestamp>.<body>", sent base64-encoded as
 * `webhook-signature: v1,<base64>`. The key is the webhook-secret setting:
 * a secret written `whsec_<base64>` (the form Standard Webhooks' libraries
 * generate and take) is keyed with the decoded bytes; any other secret
 * with its own bytes. On OpenSSL's libcrypto.
 */
#ifndef COMFYQ_SCHED_SIGN_H
#define COMFYQ_SCHED_SIGN_H

#include <stddef.h>

#define SIGN_SHA256_LEN 32

struct sign_key {
	unsigned char *key;
	size_t	       len;
};

void  sign_hmac_sha256(const void *key, size_t keylen, const void *msg,
     size_t len, unsigned char out[SIGN_SHA256_LEN]);
char *sign_base64(const void *p, size_t len);
int   sign_base64_decode(const char *s, unsigned char **out, size_t *len);
int   sign_key_parse(
      const char *secret, struct sign_key *k, char *err, size_t errlen);
void  sign_key_free(struct sign_key *k);
char *sign_webhook(const struct sign_key *k, const char *id, long long ts,
    const char *body, size_t len);

#endif
