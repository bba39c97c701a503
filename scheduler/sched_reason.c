/*
 * The reason phrases of the statuses the scheduler answers (see
 * sched_reason.h): the router's replies (sched_http.c) and the answers
 * the connection guard writes itself (sched_guard.c) name a status the
 * same way.
 */
#include "sched_reason.h"

const char *
reason_phrase(int status)
{
	switch (status) {
	case 200:
		return ("OK");
	case 201:
		return ("Created");
	case 202:
		return ("Accepted");
	case 204:
		return ("No Content");
	case 302:
		return ("Found");
	case 400:
		return ("Bad Request");
	case 401:
		return ("Unauthorized");
	case 403:
		return ("Forbidden");
	case 404:
		return ("Not Found");
	case 405:
		return ("Method Not Allowed");
	case 409:
		return ("Conflict");
	case 410:
		return ("Gone");
	case 413:
		return ("Payload Too Large");
	case 414:
		return ("URI Too Long");
	case 415:
		return ("Unsupported Media Type");
	case 417:
		return ("Expectation Failed");
	case 431:
		return ("Request Header Fields Too Large");
	case 501:
		return ("Not Implemented");
	case 503:
		return ("Service Unavailable");
	default:
		return (status < 400 ? "OK" : "Error");
	}
}
