/*
 * The WebSocket client's opening handshake (RFC 6455 §4), apart from the
 * link it opens (ws.c): the ws:// URL split into host, port, Host: header
 * and path; the upgrade request with a fresh Sec-WebSocket-Key; and the
 * check of the 101 reply (Upgrade, Connection and Sec-WebSocket-Accept).
 * It works on strings and the bufferevent's buffers only, never on a
 * struct ws (ws_int.h is the whole interface), and ws_accept_key() serves
 * the sim's server side too. A reply head is taken from the input buffer
 * only when it is whole, so the frames that follow it stay for wslay.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <openssl/evp.h>

#include "util.h"
#include "ws.h"
#include "ws_int.h"
#include "xmalloc.h"

#define WS_MAX_HEADER 16384
#define WS_GUID	      "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

int
ws_accept_key(const char *key, char out[WS_ACCEPT_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char	      buf[128];
	unsigned int  mdlen;
	int	      n;

	n = snprintf(buf, sizeof buf, "%s%s", key, WS_GUID);
	if (n < 0 || (size_t)n >= sizeof buf)
		return (-1);
	if (EVP_Digest(buf, (size_t)n, md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    mdlen != 20)
		return (-1);
	EVP_EncodeBlock((unsigned char *)out, md, 20);
	return (0);
}

int
ws_url_parse(const char *url, struct ws_url *u, char *err, size_t errlen)
{
	const char *p = url, *h, *he, *rest;
	long long   port = 80;
	char	    portbuf[8];
	size_t	    i;

	memset(u, 0, sizeof *u);
	for (i = 0; url[i] != '\0'; i++)
		if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f) {
			snprintf(err, errlen,
			    "ws url: control character or space in '%s'", url);
			return (-1);
		}
	if (strncasecmp(p, "wss://", 6) == 0) {
		snprintf(err, errlen, "ws url: wss:// is not supported");
		return (-1);
	}
	if (strncasecmp(p, "ws://", 5) != 0) {
		snprintf(
		    err, errlen, "ws url: '%s' does not start with ws://", url);
		return (-1);
	}
	h = p + 5;
	if (*h == '[') {
		if ((he = strchr(h, ']')) == NULL) {
			snprintf(
			    err, errlen, "ws url: unclosed '[' in '%s'", url);
			return (-1);
		}
		u->host = xstrndup(h + 1, (size_t)(he - h - 1));
		rest = he + 1;
	} else {
		he = h + strcspn(h, ":/?");
		u->host = xstrndup(h, (size_t)(he - h));
		rest = he;
	}
	if (*u->host == '\0') {
		snprintf(err, errlen, "ws url: no host in '%s'", url);
		goto fail;
	}
	if (*rest == ':') {
		size_t n = strcspn(rest + 1, "/?");

		if (n == 0 || n >= sizeof portbuf) {
			snprintf(err, errlen, "ws url: bad port in '%s'", url);
			goto fail;
		}
		memcpy(portbuf, rest + 1, n);
		portbuf[n] = '\0';
		if (parse_ll(portbuf, 1, 65535, &port) == -1) {
			snprintf(err, errlen, "ws url: bad port in '%s'", url);
			goto fail;
		}
		rest += 1 + n;
	} else if (*rest != '\0' && *rest != '/' && *rest != '?') {
		snprintf(err, errlen, "ws url: bad host in '%s'", url);
		goto fail;
	}
	u->port = (int)port;
	if (*rest == '\0')
		u->path = xstrdup("/");
	else if (*rest == '?')
		u->path = xasprintf("/%s", rest);
	else
		u->path = xstrdup(rest);
	u->hosthdr = strchr(u->host, ':') != NULL
	    ? xasprintf("[%s]:%d", u->host, u->port)
	    : xasprintf("%s:%d", u->host, u->port);
	return (0);
fail:
	free(u->host);
	u->host = NULL;
	return (-1);
}

void
ws_url_free(struct ws_url *u)
{
	free(u->host);
	free(u->hosthdr);
	free(u->path);
	memset(u, 0, sizeof *u);
}

void
ws_handshake_request(
    struct evbuffer *out, const struct ws_url *u, char key[WS_KEY_LEN])
{
	unsigned char raw[16];
	size_t	      i;

	for (i = 0; i < sizeof raw; i++)
		raw[i] = (unsigned char)rand_u64();
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);
	evbuffer_add_printf(out,
	    "GET %s HTTP/1.1\r\n"
	    "Host: %s\r\n"
	    "Upgrade: websocket\r\n"
	    "Connection: Upgrade\r\n"
	    "Sec-WebSocket-Key: %s\r\n"
	    "Sec-WebSocket-Version: 13\r\n"
	    "User-Agent: comfyq\r\n\r\n",
	    u->path, u->hosthdr, key);
}

/* Finds header `name` in the response head; copies its value. */
static int
ws_header(const char *head, const char *name, char *out, size_t outlen)
{
	const char *line = strstr(head, "\r\n");
	size_t	    nlen = strlen(name);

	while (line != NULL && line[2] != '\r' && line[2] != '\0') {
		const char *l = line + 2, *end = strstr(l, "\r\n");
		size_t	    vlen;

		if (end == NULL)
			break;
		if ((size_t)(end - l) > nlen && l[nlen] == ':' &&
		    strncasecmp(l, name, nlen) == 0) {
			l += nlen + 1;
			while (*l == ' ' || *l == '\t')
				l++;
			vlen = (size_t)(end - l);
			while (vlen > 0 &&
			    (l[vlen - 1] == ' ' || l[vlen - 1] == '\t'))
				vlen--;
			if (vlen >= outlen)
				vlen = outlen - 1;
			memcpy(out, l, vlen);
			out[vlen] = '\0';
			return (0);
		}
		line = end;
	}
	return (-1);
}

/* Does a comma-separated header value hold token (any case)? */
static int
ws_has_token(const char *value, const char *token)
{
	size_t tlen = strlen(token);

	while (*value != '\0') {
		size_t n;

		while (*value == ' ' || *value == ',' || *value == '\t')
			value++;
		n = strcspn(value, ", \t");
		if (n == tlen && strncasecmp(value, token, n) == 0)
			return (1);
		value += n;
	}
	return (0);
}

int
ws_handshake_reply(
    struct evbuffer *in, const char *key, char *err, size_t errlen)
{
	struct evbuffer_ptr pos;
	char		   *head, val[256], want[WS_ACCEPT_LEN];
	int		    code = 0, rc = -1;
	size_t		    n;

	pos = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (pos.pos < 0) {
		if (evbuffer_get_length(in) <= WS_MAX_HEADER)
			return (1);
		snprintf(err, errlen, "handshake: reply header too large");
		return (-1);
	}
	n = (size_t)pos.pos + 4;
	head = xmalloc(n + 1);
	evbuffer_remove(in, head, n);
	head[n] = '\0';
	if (sscanf(head, "HTTP/%*d.%*d %d", &code) != 1)
		snprintf(err, errlen, "handshake: not an HTTP reply");
	else if (code != 101)
		snprintf(err, errlen, "handshake: HTTP %d", code);
	else if (ws_header(head, "Upgrade", val, sizeof val) == -1 ||
	    strcasecmp(val, "websocket") != 0 ||
	    ws_header(head, "Connection", val, sizeof val) == -1 ||
	    !ws_has_token(val, "upgrade"))
		snprintf(err, errlen, "handshake: no websocket upgrade");
	else if (ws_header(head, "Sec-WebSocket-Accept", val, sizeof val) ==
		-1 ||
	    ws_accept_key(key, want) == -1 || strcmp(val, want) != 0)
		snprintf(err, errlen, "handshake: bad Sec-WebSocket-Accept");
	else
		rc = 0;
	free(head);
	return (rc);
}
