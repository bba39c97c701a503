/*
 * systemd's readiness protocol (sd_notify(3)) without libsystemd: a unit
 * of Type=notify starts a daemon with NOTIFY_SOCKET naming a unix datagram
 * socket, and the daemon sends "READY=1" there once it serves, and
 * "STOPPING=1" when it begins to stop. Outside systemd NOTIFY_SOCKET is
 * unset and every call does nothing.
 */
#ifndef COMFYQ_SDNOTIFY_H
#define COMFYQ_SDNOTIFY_H

void sdnotify_init(void);
void sdnotify(const char *state);

#endif
