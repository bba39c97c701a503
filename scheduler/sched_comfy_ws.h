/*
 * What the two halves of /comfy/ws share (sched_comfy_ws.c has the
 * design): the sockets (sched_comfy_sock.c: the WebSocket server) and the
 * frames and status the event side (sched_comfy_ws.c) makes for them.
 */
#ifndef COMFYQ_SCHED_COMFY_WS_H
#define COMFYQ_SCHED_COMFY_WS_H

#include <sys/queue.h>

#include <cjson/cJSON.h>

struct sched;
struct ws_peer;

#define CWS_ID_MAX 128

struct cws {
	struct sched   *s;
	char		sid[CWS_ID_MAX + 1];
	char		tenant[160];
	struct ws_peer *peer;
	int		dead;  /* closed: off cws_socks */
	int		first; /* no JSON message seen yet */
	TAILQ_ENTRY(cws) link;
};
TAILQ_HEAD(cws_list, cws);

/* sched_comfy_sock.c: the open sockets, newest first. */
extern struct cws_list cws_socks;
extern long long       cws_nsocks;
void		       cws_queue(struct cws *c, const char *text);
/* Closes and frees every socket now (the reader is going). */
void cws_close_all(void);

/* sched_comfy_ws.c */
char  *cws_frame(const char *type, cJSON *data); /* takes data over */
cJSON *cws_status(const char *tenant);		 /* status's data */
/* Follows the events reader from now on (once; later calls do nothing). */
void cws_follow(struct sched *s);

#endif
