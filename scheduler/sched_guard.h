/*
 * The connection guard (design in sched_guard.c): every connection a
 * listener accepts reads through it, and a request evhttp would refuse with
 * its own HTML page (body or headers over the limits, a malformed head) is
 * answered by the guard with the API's JSON error instead, logged and
 * counted like any other reply (route "(guard)").
 */
#ifndef COMFYQ_SCHED_GUARD_H
#define COMFYQ_SCHED_GUARD_H

struct evhttp;
struct evhttp_request;
struct sched;

/*
 * Gives every connection http accepts a guard (evhttp_set_bevcb), with the
 * limits of s->cfg as they are at each request (body-max-bytes,
 * header-max-bytes, request-timeout-s). The router of http must call
 * guard_answer() first.
 */
void guard_attach(struct evhttp *http, struct sched *s);
/* 1 when req is a stand-in: the guard has answered it and will close the
 * connection; 0 for any other request. */
int guard_answer(struct evhttp_request *req);
/* What follows req on its connection is another protocol (a WebSocket
 * after its 101): the guard hands it on unread. */
void guard_upgrade(struct evhttp_request *req);

#endif
