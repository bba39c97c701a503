/*
 * S3 addressing and presigned URLs (see s3sign.h).
 *
 * An endpoint is scheme://host[:port] with nothing after it but an
 * optional '/'; a port that is the scheme's default is dropped, since
 * clients leave it out of the Host header and the signature covers Host.
 * Path-style puts the bucket in the path (MinIO, s3rver, most
 * S3-compatible stores); virtual-hosted puts it in front of the host (AWS
 * S3's default; R2 takes both).
 *
 * A key is URI-encoded once, every byte but A-Z a-z 0-9 - . _ ~ and '/'
 * as %XX, which is both what goes on the wire and S3's canonical URI (S3
 * alone among AWS services does not encode the path twice).
 *
 * A presigned GET follows "Authenticating Requests: Using Query
 * Parameters (AWS Signature Version 4)": the canonical request is
 *   GET \n <canonical URI> \n <the X-Amz-* query, sorted> \n
 *   host:<host> \n \n host \n UNSIGNED-PAYLOAD
 * the string to sign is AWS4-HMAC-SHA256, the time, the scope
 * (<date>/<region>/s3/aws4_request) and the canonical request's SHA-256
 * in hex, and the key is HMAC-SHA256 chained from "AWS4" + secret over
 * the date, region, "s3" and "aws4_request". The unit test checks the
 * documented example's signature.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "errout.h"
#include "log.h"
#include "s3sign.h"
#include "xmalloc.h"

static int
s3_copy(char *dst, size_t len, const char *src, size_t n)
{
	if (n >= len)
		return (-1);
	memcpy(dst, src, n);
	dst[n] = '\0';
	return (0);
}

/* Printable ASCII without ' ', '/' (the scope's separator) or ','. */
static int
s3_plain(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s > '~' || *s == '/' || *s == ',')
			return (0);
	return (1);
}

/* Parses the endpoint into t->scheme and t->host. */
static int
s3_endpoint(struct s3_target *t, const char *ep, char *err, size_t errlen)
{
	const char *host, *end, *colon;
	size_t	    n;

	if (strncmp(ep, "https://", 8) == 0)
		host = ep + 8;
	else if (strncmp(ep, "http://", 7) == 0)
		host = ep + 7;
	else
		ERR_OUT("s3-endpoint: \"%.200s\" is not an http:// or "
			"https:// URL",
		    ep);
	snprintf(t->scheme, sizeof t->scheme, "%.*s", (int)(host - ep - 3), ep);
	n = strcspn(host, "/?#");
	end = host + n;
	if (n == 0 || (*end != '\0' && strcmp(end, "/") != 0))
		ERR_OUT("s3-endpoint: \"%.200s\" must be scheme://host[:port] "
			"with no path",
		    ep);
	if (memchr(host, '@', n) != NULL)
		ERR_OUT("s3-endpoint: credentials go in s3-access-key and "
			"s3-secret-key, not the URL");
	for (colon = end; colon > host && colon[-1] != ':' && colon[-1] != ']';
	     colon--)
		;
	if (colon > host && colon[-1] == ':' &&
	    ((strcmp(t->scheme, "http") == 0 && (size_t)(end - colon) == 2 &&
		 strncmp(colon, "80", 2) == 0) ||
		(strcmp(t->scheme, "https") == 0 &&
		    (size_t)(end - colon) == 3 &&
		    strncmp(colon, "443", 3) == 0)))
		n = (size_t)(colon - 1 - host);
	if (s3_copy(t->host, sizeof t->host, host, n) == -1)
		ERR_OUT("s3-endpoint: the host is over %zu bytes",
		    sizeof t->host - 1);
	if (strspn(t->host,
		"abcdefghijklmnopqrstuvwxyz"
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") != n)
		ERR_OUT("s3-endpoint: \"%s\" is not a host[:port]", t->host);
	return (0);
}

/*
 * Fills t from the settings. Returns 0, or -1 with the reason in err
 * (naming the setting).
 */
int
s3_target_init(struct s3_target *t, const char *endpoint, const char *region,
    const char *bucket, int path_style, const char *access, const char *secret,
    char *err, size_t errlen)
{
	size_t n = strlen(bucket);

	memset(t, 0, sizeof *t);
	if (s3_endpoint(t, endpoint, err, errlen) == -1)
		return (-1);
	if (*region == '\0' ||
	    s3_copy(t->region, sizeof t->region, region, strlen(region)) ==
		-1 ||
	    strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-") !=
		strlen(region))
		ERR_OUT("s3-region: \"%.64s\" is not a region (lower-case "
			"letters, digits and '-', as us-east-1 or auto)",
		    region);
	if (n < 3 || n > 63 ||
	    strspn(bucket, "abcdefghijklmnopqrstuvwxyz0123456789.-") != n ||
	    *bucket == '.' || *bucket == '-')
		ERR_OUT("s3-bucket: \"%.64s\" is not a bucket name (3..63 of "
			"lower-case letters, digits, '.' and '-')",
		    bucket);
	memcpy(t->bucket, bucket, n + 1);
	t->path_style = path_style;
	if (*access == '\0' ||
	    s3_copy(t->access, sizeof t->access, access, strlen(access)) ==
		-1 ||
	    !s3_plain(access))
		ERR_OUT("s3-access-key: must be 1..%zu printable characters "
			"without ' ', '/' or ','",
		    sizeof t->access - 1);
	if (*secret == '\0' ||
	    s3_copy(t->secret, sizeof t->secret, secret, strlen(secret)) == -1)
		ERR_OUT("s3-secret-key: must be 1..%zu bytes (or "
			"s3-secret-key-file)",
		    sizeof t->secret - 1);
	return (0);
}

/* s URI-encoded (see the top); the caller frees it. */
char *
s3_uri_encode(const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	char		 *out = xmalloc(3 * strlen(s) + 1), *o = out;
	unsigned char	  c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~' || (keep_slash && c == '/'))
			*o++ = (char)c;
		else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return (out);
}

/* The Host header of t's requests. */
static char *
s3_host(const struct s3_target *t)
{
	return (t->path_style ? xstrdup(t->host)
			      : xasprintf("%s.%s", t->bucket, t->host));
}

/* The object's path: /<bucket>/<key> or /<key>, key encoded. */
static char *
s3_path(const struct s3_target *t, const char *key)
{
	char *enc = s3_uri_encode(key, 1), *p;

	p = t->path_style ? xasprintf("/%s/%s", t->bucket, enc)
			  : xasprintf("/%s", enc);
	free(enc);
	return (p);
}

/* The URL of key, with query (already canonical: sorted, encoded) after
 * a '?' unless it is NULL. The caller frees it. */
char *
s3_url(const struct s3_target *t, const char *key, const char *query)
{
	char *host = s3_host(t), *path = s3_path(t, key), *url;

	url = xasprintf("%s://%s%s%s%s", t->scheme, host, path,
	    query != NULL ? "?" : "", query != NULL ? query : "");
	free(host);
	free(path);
	return (url);
}

void
s3_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int  n = sizeof md;
	int	      i;

	if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1)
		fatalx("SHA-256 failed");
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void
s3_hmac(const void *key, size_t keylen, const char *msg, unsigned char out[32])
{
	unsigned int n = 32;

	if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg,
		strlen(msg), out, &n) == NULL)
		fatalx("HMAC-SHA256 failed");
}

/* The signature of sts in hex, with the key derived for date and region. */
static void
s3_signature(
    const struct s3_target *t, const char *date, const char *sts, char out[65])
{
	unsigned char k[32], sig[32];
	char	     *first = xasprintf("AWS4%s", t->secret);
	int	      i;

	s3_hmac(first, strlen(first), date, k);
	explicit_bzero(first, strlen(first));
	free(first);
	s3_hmac(k, sizeof k, t->region, k);
	s3_hmac(k, sizeof k, "s3", k);
	s3_hmac(k, sizeof k, "aws4_request", k);
	s3_hmac(k, sizeof k, sts, sig);
	explicit_bzero(k, sizeof k);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", sig[i]);
}

/*
 * A URL that lets anyone GET key for expires_s seconds (1..604800) from
 * now (seconds since the epoch). The caller frees it.
 */
char *
s3_presign_get(
    const struct s3_target *t, const char *key, time_t now, long expires_s)
{
	char	  stamp[17], date[9], hash[65], sig[65];
	char	 *host, *path, *query, *creq, *sts, *url, *ak;
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
	memcpy(date, stamp, 8);
	date[8] = '\0';
	host = s3_host(t);
	path = s3_path(t, key);
	/* The parameters in sorted order; only the credential needs
	 * encoding (the region is plain). */
	ak = s3_uri_encode(t->access, 0);
	query =
	    xasprintf("X-Amz-Algorithm=AWS4-HMAC-SHA256"
		      "&X-Amz-Credential=%s%%2F%s%%2F%s%%2Fs3%%2Faws4_request"
		      "&X-Amz-Date=%s&X-Amz-Expires=%ld"
		      "&X-Amz-SignedHeaders=host",
		ak, date, t->region, stamp, expires_s);
	free(ak);
	creq = xasprintf("GET\n%s\n%s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD", path,
	    query, host);
	s3_sha256_hex(creq, strlen(creq), hash);
	sts = xasprintf("AWS4-HMAC-SHA256\n%s\n%s/%s/s3/aws4_request\n%s",
	    stamp, date, t->region, hash);
	s3_signature(t, date, sts, sig);
	url = xasprintf("%s://%s%s?%s&X-Amz-Signature=%s", t->scheme, host,
	    path, query, sig);
	free(host);
	free(path);
	free(query);
	free(creq);
	free(sts);
	return (url);
}
