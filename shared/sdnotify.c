/*
 * sd_notify(3)'s wire format: one datagram of "KEY=VALUE" lines to the
 * AF_UNIX socket NOTIFY_SOCKET names, a path or, with a leading '@', a name
 * in the abstract namespace. sdnotify_init() reads the variable once and
 * removes it from the environment, so a child (the worker's
 * comfyui-start-cmd) cannot speak for this process; with NotifyAccess=main,
 * systemd's default, it would be ignored anyway. A send that fails is
 * logged at verbose level and changes nothing: readiness is a service to
 * the supervisor, never a reason to stop.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "sdnotify.h"

static struct {
	int		   inited;
	struct sockaddr_un sa;
	socklen_t	   salen; /* 0: no supervisor listens */
} sdn;

void
sdnotify_init(void)
{
	const char *path;
	size_t	    len;

	if (sdn.inited)
		return;
	sdn.inited = 1;
	if ((path = getenv("NOTIFY_SOCKET")) == NULL)
		return;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len < 2 ||
	    len >= sizeof sdn.sa.sun_path) {
		log_warnx(
		    "NOTIFY_SOCKET '%s' is not a socket path; ignored", path);
	} else {
		memset(&sdn.sa, 0, sizeof sdn.sa);
		sdn.sa.sun_family = AF_UNIX;
		memcpy(sdn.sa.sun_path, path, len);
		if (path[0] == '@')
			sdn.sa.sun_path[0] = '\0';
		sdn.salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
		    len + (path[0] == '/'));
	}
	unsetenv("NOTIFY_SOCKET");
}

void
sdnotify(const char *state)
{
	int fd;

	sdnotify_init();
	if (sdn.salen == 0)
		return;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1) {
		log_at(LL_VERBOSE, "sd_notify %s: socket: %s", state,
		    strerror(errno));
		return;
	}
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
		(struct sockaddr *)&sdn.sa, sdn.salen) == -1)
		log_at(LL_VERBOSE, "sd_notify %s: %s", state, strerror(errno));
	close(fd);
}
