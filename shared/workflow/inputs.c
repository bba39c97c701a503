/*
 * Input bytes from base64, data URIs and URLs (see inputs.h).
 *
 * The address check sits in CURLOPT_OPENSOCKETFUNCTION, which libcurl
 * calls with the resolved address of every connection it opens, redirects
 * included; refusing there closes the DNS-rebinding and redirect-to-
 * localhost holes that checking the URL's host name leaves open. Proxies
 * are switched off, as the check must see the real peer. Bodies are
 * capped while they arrive, whatever Content-Length says.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "errout.h"
#include "inputs.h"
#include "xmalloc.h"

const struct inputs_opts inputs_opts_default = {
	.max_bytes = 20 << 20,
	.timeout_ms = 30000,
	.max_redirects = 3,
	.allow_private = 0,
};

/* Once per process, before any thread downloads (libcurl's rule). */
void
inputs_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int
inputs_is_url(const char *s)
{
	return (strncasecmp(s, "http://", 7) == 0 ||
	    strncasecmp(s, "https://", 8) == 0);
}

static int
inputs_b64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return (c - 'A');
	if (c >= 'a' && c <= 'z')
		return (c - 'a' + 26);
	if (c >= '0' && c <= '9')
		return (c - '0' + 52);
	if (c == '+' || c == '-')
		return (62);
	if (c == '/' || c == '_')
		return (63);
	return (-1);
}

/*
 * Decodes base64 (standard or URL-safe alphabet, padding optional, white
 * space ignored) of at most max decoded bytes into a malloc'd *out, which
 * the caller frees; on -1 *out is NULL and nothing is left to free.
 */
int
inputs_base64(const char *s, size_t max, unsigned char **out, size_t *len,
    char *err, size_t errlen)
{
	unsigned char *b;
	size_t	       n = strlen(s), o = 0, i, pad = 0;
	uint32_t       acc = 0;
	int	       bits = 0, v;

	*out = NULL;
	if (n / 4 * 3 > max + 3)
		ERR_OUT(
		    "over the %zu byte limit (base64 of %zu bytes)", max, n);
	if ((b = malloc(n / 4 * 3 + 3)) == NULL)
		ERR_OUT("out of memory for %zu bytes", n);
	for (i = 0; i < n; i++) {
		if (strchr(" \t\r\n", s[i]) != NULL)
			continue;
		if (s[i] == '=') {
			pad++;
			continue;
		}
		if (pad > 0 ||
		    (v = inputs_b64_value((unsigned char)s[i])) < 0) {
			free(b);
			ERR_OUT("not base64 (byte %zu)", i);
		}
		acc = acc << 6 | (uint32_t)v;
		if ((bits += 6) >= 8) {
			bits -= 8;
			b[o++] = (unsigned char)(acc >> bits);
		}
	}
	if (o == 0 || pad > 2 || bits >= 6 || o > max) {
		free(b);
		if (o > max)
			ERR_OUT("over the %zu byte limit", max);
		ERR_OUT("not base64 (%s)", o == 0 ? "empty" : "bad length");
	}
	*out = b;
	*len = o;
	return (0);
}

/* Standard base64 with padding, NUL-terminated (free() it); dies on OOM. */
char *
inputs_base64_encode(const unsigned char *b, size_t len)
{
	static const char a[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char  *out = xmalloc((len + 2) / 3 * 4 + 1);
	size_t i, o = 0;

	for (i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)b[i] << 16;

		v |= i + 1 < len ? (uint32_t)b[i + 1] << 8 : 0;
		v |= i + 2 < len ? b[i + 2] : 0;
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		out[o++] = i + 1 < len ? a[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? a[v & 63] : '=';
	}
	out[o] = '\0';
	return (out);
}

static int
inputs_v4_blocked(uint32_t a)
{
	static const struct {
		uint32_t net;
		int	 bits;
	} nets[] = {
		{ 0x00000000, 8 },  /* this network */
		{ 0x0a000000, 8 },  /* 10/8 */
		{ 0x64400000, 10 }, /* 100.64/10 carrier NAT */
		{ 0x7f000000, 8 },  /* loopback */
		{ 0xa9fe0000, 16 }, /* link-local, cloud metadata */
		{ 0xac100000, 12 }, /* 172.16/12 */
		{ 0xc0000000, 24 }, /* IETF protocol assignments */
		{ 0xc0a80000, 16 }, /* 192.168/16 */
		{ 0xc6120000, 15 }, /* benchmarking */
		{ 0xe0000000, 4 },  /* multicast */
		{ 0xf0000000, 4 },  /* reserved, broadcast */
	};
	size_t i;

	for (i = 0; i < sizeof nets / sizeof nets[0]; i++)
		if ((a >> (32 - nets[i].bits)) ==
		    (nets[i].net >> (32 - nets[i].bits)))
			return (1);
	return (0);
}

/* 1 when sa is an address no URL input may reach by default. */
int
inputs_addr_blocked(const struct sockaddr *sa)
{
	const unsigned char	  *a;
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xff };
	static const unsigned char nat64[12] = { 0, 0x64, 0xff, 0x9b };
	static const unsigned char zero[12];

	if (sa->sa_family == AF_INET)
		return (inputs_v4_blocked(
		    ntohl(((const struct sockaddr_in *)(const void *)sa)
			      ->sin_addr.s_addr)));
	if (sa->sa_family != AF_INET6)
		return (1);
	a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
	/* IPv4 inside IPv6 (mapped, NAT64, compatible): judge the IPv4. */
	if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0 ||
	    memcmp(a, zero, 12) == 0)
		return (inputs_v4_blocked((uint32_t)a[12] << 24 |
		    (uint32_t)a[13] << 16 | (uint32_t)a[14] << 8 | a[15]));
	return ((a[0] & 0xfe) == 0xfc ||	       /* unique local */
	    (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || /* link-local */
	    a[0] == 0xff);			       /* multicast */
}

struct inputs_dl {
	const struct inputs_opts *o;
	unsigned char		 *buf;
	size_t			  len, cap;
	int			  too_big, oom, blocked;
	char			  peer[INET6_ADDRSTRLEN];
};

static size_t
inputs_write(char *data, size_t size, size_t n, void *arg)
{
	struct inputs_dl *d = arg;
	unsigned char	 *nb;
	size_t		  add = size * n;

	if (d->len + add > d->o->max_bytes) {
		d->too_big = 1;
		return (0);
	}
	if (d->len + add > d->cap) {
		size_t cap = d->cap * 2 + add + 65536;

		if (cap > d->o->max_bytes)
			cap = d->o->max_bytes;
		if ((nb = realloc(d->buf, cap)) == NULL) {
			d->oom = 1;
			return (0);
		}
		d->buf = nb;
		d->cap = cap;
	}
	memcpy(d->buf + d->len, data, add);
	d->len += add;
	return (add);
}

static curl_socket_t
inputs_open(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct inputs_dl *d = arg;
	const void	 *ip;

	(void)purpose;
	if (!d->o->allow_private && inputs_addr_blocked(&a->addr)) {
		ip = a->family == AF_INET
		    ? (const void *)&((struct sockaddr_in *)(void *)&a->addr)
			  ->sin_addr
		    : (const void *)&((struct sockaddr_in6 *)(void *)&a->addr)
			  ->sin6_addr;
		inet_ntop(a->family, ip, d->peer, sizeof d->peer);
		d->blocked = 1;
		return (CURL_SOCKET_BAD);
	}
	return (socket(a->family, a->socktype, a->protocol));
}

/* Downloads url into d; returns 0 or -1 with err. */
static int
inputs_download(const char *url, struct inputs_dl *d, char *err, size_t errlen)
{
	CURL	*c;
	CURLcode rc;
	long	 status = 0, redirects = 0;

	if ((c = curl_easy_init()) == NULL)
		ERR_OUT("download: libcurl did not start");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)d->o->max_redirects);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, d->o->timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(
	    c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)d->o->max_bytes);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "comfyq/" COMFYQ_VERSION);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, inputs_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, d);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, inputs_open);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, d);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c, CURLINFO_REDIRECT_COUNT, &redirects);
	curl_easy_cleanup(c);
	if (d->blocked)
		ERR_OUT(
		    "refused: %s is a private, loopback or link-local address",
		    d->peer);
	if (d->too_big || rc == CURLE_FILESIZE_EXCEEDED)
		ERR_OUT("over the %zu byte limit", d->o->max_bytes);
	if (d->oom)
		ERR_OUT("out of memory");
	if (rc == CURLE_OPERATION_TIMEDOUT)
		ERR_OUT("timed out after %ld ms", d->o->timeout_ms);
	if (rc == CURLE_TOO_MANY_REDIRECTS)
		ERR_OUT("more than %d redirects", d->o->max_redirects);
	if (rc != CURLE_OK)
		ERR_OUT("download failed: %s", curl_easy_strerror(rc));
	if (status != 200)
		ERR_OUT("HTTP %ld", status);
	if (d->len == 0)
		ERR_OUT("empty download");
	return (0);
}

/*
 * Turns a source (base64, data URI or http(s) URL) into bytes in a
 * malloc'd *out. Blocks for URLs. Returns 0, or -1 with the reason.
 */
int
inputs_fetch(const char *src, const struct inputs_opts *o, unsigned char **out,
    size_t *len, char *err, size_t errlen)
{
	struct inputs_dl d;
	const char	*comma;

	if (o == NULL)
		o = &inputs_opts_default;
	*out = NULL;
	*len = 0;
	if (*src == '\0')
		ERR_OUT("empty");
	if (strncasecmp(src, "data:", 5) == 0) {
		comma = strchr(src, ',');
		if (comma == NULL || comma - src < 12 ||
		    strncasecmp(comma - 7, ";base64", 7) != 0)
			ERR_OUT("a data URI must be data:<type>;base64,<data>");
		return (inputs_base64(
		    comma + 1, o->max_bytes, out, len, err, errlen));
	}
	if (!inputs_is_url(src)) {
		if (strstr(src, "://") != NULL)
			ERR_OUT("only http:// and https:// URLs are fetched");
		return (
		    inputs_base64(src, o->max_bytes, out, len, err, errlen));
	}
	if (strlen(src) > 4096)
		ERR_OUT("URL over 4096 bytes");
	memset(&d, 0, sizeof d);
	d.o = o;
	if (inputs_download(src, &d, err, errlen) == -1) {
		free(d.buf);
		return (-1);
	}
	*out = d.buf;
	*len = d.len;
	return (0);
}
