/*
 * A blocking HTTP/1.1 client for the scheduler's tests: one GET per
 * connection, the response's status and headers, its body (identity with
 * Content-Length, chunked, or up to EOF), and Server-Sent Events read off
 * the body one at a time. Every wait has a timeout.
 */
#ifndef COMFYQ_TCLIENT_H
#define COMFYQ_TCLIENT_H

struct tc;

struct tc_ev {
	char id[64];
	char type[64];
	char data[16384];
};

/* Connects to 127.0.0.1:port and sends GET path (with Last-Event-ID when
 * last_id != NULL); rcvbuf > 0 sets SO_RCVBUF first. */
struct tc *tc_open(int port, const char *path, const char *last_id, int rcvbuf);
void	   tc_close(struct tc *c);
/* The status once the headers came, or -1. */
int tc_status(struct tc *c, int timeout_ms);
/* A response header's value ("" when absent); valid until the next call. */
const char *tc_header(struct tc *c, const char *name);
/* The whole body of a response that ends. */
const char *tc_body(struct tc *c, int timeout_ms);
/* 1: an event in ev; 0: the stream ended cleanly (the last chunk); -1:
 * timeout, or the connection closed without the last chunk. Comments are
 * counted (tc_keepalives), not returned. */
int tc_event(struct tc *c, struct tc_ev *ev, int timeout_ms);
int tc_ended(const struct tc *c);
int tc_keepalives(const struct tc *c);
/* 1 once the server closed the connection, within timeout_ms. */
int tc_eof(struct tc *c, int timeout_ms);
/* The body decoded so far. */
const char *tc_raw(struct tc *c);

#endif
