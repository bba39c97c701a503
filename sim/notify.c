/*
 * What the sim says on the WebSocket: JSON text frames
 * {"type": <event>, "data": {...}}, to one client id or to every socket.
 * `status` carries queue_remaining and goes to all sockets on every queue
 * change; a new socket first gets `status` with its sid and, if its id
 * owns the running prompt, `executing` with the node but no prompt_id
 * (ComfyUI's reconnect quirk). The silence fault mutes one client id:
 * nothing is sent to it, broadcasts included, until the prompt ends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "xmalloc.h"

static char *muted;

static void
notify_write(const char *sid, const char *type, cJSON *data)
{
	cJSON *msg = cJSON_CreateObject();
	char  *text;
	size_t n = 0;

	cJSON_AddStringToObject(msg, "type", type);
	cJSON_AddItemToObject(msg, "data", data);
	if ((text = json_print(msg, &n)) != NULL) {
		ws_server_send(sid, muted, text, n);
		free(text);
	}
	cJSON_Delete(msg);
}

/* Whether notify_send(sid, ...) would reach a socket: an event nobody
 * gets need not be built. */
int
notify_wanted(const char *sid)
{
	if (sid != NULL && muted != NULL && strcmp(sid, muted) == 0)
		return (0);
	return (ws_server_reaches(sid, muted));
}

/* Sends an event to sid, or to every socket when sid is NULL; takes
 * ownership of data. */
void
notify_send(const char *sid, const char *type, cJSON *data)
{
	if (sid != NULL && muted != NULL && strcmp(sid, muted) == 0) {
		cJSON_Delete(data);
		return;
	}
	notify_write(sid, type, data);
}

static cJSON *
notify_status_data(void)
{
	cJSON *d = cJSON_CreateObject(), *s, *e;

	s = cJSON_AddObjectToObject(d, "status");
	e = cJSON_AddObjectToObject(s, "exec_info");
	cJSON_AddNumberToObject(e, "queue_remaining", queue_remaining());
	return (d);
}

/* To every socket, on every queue change: the one event sent for each
 * prompt several times, so its text is made directly (the bytes
 * notify_write would print for notify_status_data()). */
void
notify_status(void)
{
	char text[128];
	int  n;

	n = snprintf(text, sizeof text,
	    "{\"type\":\"status\",\"data\":{\"status\":{\"exec_info\":{"
	    "\"queue_remaining\":%d}}}}",
	    queue_remaining());
	ws_server_send(NULL, muted, text, (size_t)n);
}

/* The first frames of a new socket. */
void
notify_hello(const char *sid)
{
	cJSON	   *d = notify_status_data();
	const char *node;

	cJSON_AddStringToObject(d, "sid", sid);
	notify_send(sid, "status", d);
	if ((node = exec_reconnect_node(sid)) != NULL) {
		d = cJSON_CreateObject();
		cJSON_AddStringToObject(d, "node", node);
		notify_send(sid, "executing", d);
	}
}

void
notify_mute(const char *sid)
{
	free(muted);
	muted = xstrdup(sid);
}

void
notify_unmute(void)
{
	free(muted);
	muted = NULL;
}
