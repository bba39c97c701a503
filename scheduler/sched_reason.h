/*
 * The reason phrase of an HTTP status, for a status line.
 */
#ifndef COMFYQ_SCHED_REASON_H
#define COMFYQ_SCHED_REASON_H

/* "Payload Too Large" for 413; "OK" or "Error" for a status not listed. */
const char *reason_phrase(int status);

#endif
