/*
 * Webhook signatures (scheduler/sched_sign.h) against published vectors:
 * RFC 4231 test case 2 for HMAC-SHA256, and the Standard Webhooks
 * specification's example (secret, id, timestamp, body and signature as
 * the spec gives them; checked with `openssl dgst -sha256 -mac HMAC`).
 * Base64 both ways, and the whsec_ secret form.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched_sign.h"
#include "unit.h"

static void
hex(const unsigned char *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

static void
test_rfc4231(void)
{
	unsigned char mac[SIGN_SHA256_LEN];
	char	      h[2 * SIGN_SHA256_LEN + 1];

	sign_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac);
	hex(mac, sizeof mac, h);
	ASSERT_STREQ(h,
	    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void
test_base64(void)
{
	unsigned char *b = NULL;
	size_t	       n = 0;
	char	      *s;

	s = sign_base64("foobar", 6);
	ASSERT_STREQ(s, "Zm9vYmFy");
	free(s);
	s = sign_base64("fooba", 5);
	ASSERT_STREQ(s, "Zm9vYmE=");
	free(s);
	s = sign_base64("f", 1);
	ASSERT_STREQ(s, "Zg==");
	free(s);
	ASSERT_EQ(sign_base64_decode("Zm9vYmE=", &b, &n), 0);
	ASSERT_EQ(n, 5);
	ASSERT_TRUE(memcmp(b, "fooba", 5) == 0);
	free(b);
	ASSERT_EQ(sign_base64_decode("Zg==", &b, &n), 0);
	ASSERT_EQ(n, 1);
	free(b);
	ASSERT_EQ(sign_base64_decode("", &b, &n), -1);
	ASSERT_EQ(sign_base64_decode("Zm9", &b, &n), -1);
	ASSERT_EQ(sign_base64_decode("Zm=v", &b, &n), -1);
	ASSERT_EQ(sign_base64_decode("Zm9v YmFy", &b, &n), -1);
	ASSERT_EQ(sign_base64_decode("Zm9_", &b, &n), -1);
}

static void
test_standard_webhooks(void)
{
	struct sign_key k;
	const char     *body = "{\"test\": 2432232314}";
	char	       *sig, err[256] = "";

	ASSERT_EQ(sign_key_parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &k,
		      err, sizeof err),
	    0);
	ASSERT_EQ(k.len, 24);
	sig = sign_webhook(
	    &k, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body));
	ASSERT_STREQ(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
	free(sig);
	sign_key_free(&k);

	/* A secret without the prefix is keyed with its own bytes. */
	ASSERT_EQ(sign_key_parse("Jefe", &k, err, sizeof err), 0);
	ASSERT_EQ(k.len, 4);
	ASSERT_TRUE(memcmp(k.key, "Jefe", 4) == 0);
	sign_key_free(&k);

	ASSERT_EQ(sign_key_parse("whsec_not base64!", &k, err, sizeof err), -1);
	ASSERT_TRUE(strstr(err, "whsec_") != NULL);
	ASSERT_TRUE(k.key == NULL);
	ASSERT_EQ(sign_key_parse("whsec_", &k, err, sizeof err), -1);
}

const struct unit_test test_sign[] = {
	{ "rfc4231", test_rfc4231 },
	{ "base64", test_base64 },
	{ "standard_webhooks", test_standard_webhooks },
	{ NULL, NULL },
};
