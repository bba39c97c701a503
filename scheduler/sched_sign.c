/*
 * Webhook signatures (see sched_sign.h). The signed message is built in
 * one buffer and given to libcrypto's one-shot HMAC(); base64 is
 * EVP_EncodeBlock / EVP_DecodeBlock, with the checks DecodeBlock leaves
 * out (length, alphabet, padding only at the end).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "log.h"
#include "sched_sign.h"
#include "xmalloc.h"

#define SIGN_WHSEC "whsec_"
#define SIGN_B64                                                               \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

void
sign_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
    unsigned char out[SIGN_SHA256_LEN])
{
	unsigned int n = SIGN_SHA256_LEN;

	if (HMAC(EVP_sha256(), key, (int)keylen, msg, len, out, &n) == NULL)
		fatalx("HMAC-SHA256 failed");
}

/* Standard base64 with padding; the caller frees it. */
char *
sign_base64(const void *p, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, p, (int)len);
	return (out);
}

/*
 * Decodes standard padded base64 into a malloc'd *out of *len bytes.
 * Returns -1 for anything else (wrong length, a byte outside the
 * alphabet, '=' before the end).
 */
int
sign_base64_decode(const char *s, unsigned char **out, size_t *len)
{
	size_t n = strlen(s), pad = 0;
	int    got;

	if (n == 0 || n % 4 != 0)
		return (-1);
	while (pad < 2 && s[n - 1 - pad] == '=')
		pad++;
	if (strspn(s, SIGN_B64) != n - pad)
		return (-1);
	*out = xmalloc(n / 4 * 3 + 1);
	if ((got = EVP_DecodeBlock(*out, (const unsigned char *)s, (int)n)) <
	    0) {
		free(*out);
		*out = NULL;
		return (-1);
	}
	*len = (size_t)got - pad;
	return (0);
}

/* The key webhook-secret gives; sign_key_free releases it. */
int
sign_key_parse(const char *secret, struct sign_key *k, char *err, size_t errlen)
{
	size_t plen = strlen(SIGN_WHSEC);

	k->key = NULL;
	k->len = 0;
	if (strncmp(secret, SIGN_WHSEC, plen) != 0) {
		k->len = strlen(secret);
		k->key = xmalloc(k->len + 1);
		memcpy(k->key, secret, k->len + 1);
		return (0);
	}
	if (sign_base64_decode(secret + plen, &k->key, &k->len) == -1 ||
	    k->len == 0) {
		free(k->key);
		k->key = NULL;
		snprintf(err, errlen,
		    "webhook-secret: after whsec_ must come base64 (padded, "
		    "standard alphabet)");
		return (-1);
	}
	return (0);
}

void
sign_key_free(struct sign_key *k)
{
	free(k->key);
	k->key = NULL;
	k->len = 0;
}

/* The webhook-signature header's value, "v1,<base64>"; the caller frees. */
char *
sign_webhook(const struct sign_key *k, const char *id, long long ts,
    const char *body, size_t len)
{
	unsigned char mac[SIGN_SHA256_LEN];
	char	     *msg, *b64, *out, head[64];
	size_t	      ilen = strlen(id), hlen;

	hlen = (size_t)snprintf(head, sizeof head, ".%lld.", ts);
	msg = xmalloc(ilen + hlen + len + 1);
	memcpy(msg, id, ilen);
	memcpy(msg + ilen, head, hlen);
	memcpy(msg + ilen + hlen, body, len);
	sign_hmac_sha256(k->key, k->len, msg, ilen + hlen + len, mac);
	b64 = sign_base64(mac, sizeof mac);
	out = xasprintf("v1,%s", b64);
	free(b64);
	free(msg);
	return (out);
}
