#!/bin/sh
# setup-runtime.sh: the runtime stage's one setup step, run as root in a
# fresh Debian 12 root: by the Dockerfiles (RUN) and by rehearse.sh (in its
# debootstrap root), so what the rehearsal proves is what the image does.
#   - installs PKGS_IMAGE (deploy/lib/packages.sh, next to this script in
#     the image's build context copy) and nothing else, then drops apt's
#     lists;
#   - adds the system user and group comfyq (uid and gid 10001, no shell,
#     home /var/lib/comfyq), which the images run as;
#   - makes the data folders, owned by comfyq: /var/lib/comfyq/outputs (the
#     workers' store, which the scheduler reads), /var/lib/comfyq/sim
#     (comfyq-sim's base directory) and /var/lib/comfyq/comfy (ComfyUI's
#     output, input and temp folders, which the janitor cleans). A named
#     volume mounted on one of them starts with that ownership.
# Extra packages for one image (the ComfyUI image's Python) are arguments.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/packages.sh"

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $PKGS_IMAGE "$@"
apt-get clean
rm -rf /var/lib/apt/lists/*

getent group comfyq >/dev/null || groupadd --system --gid 10001 comfyq
getent passwd comfyq >/dev/null ||
	useradd --system --uid 10001 --gid comfyq --home-dir /var/lib/comfyq \
		--no-create-home --shell /usr/sbin/nologin comfyq
for d in /var/lib/comfyq /var/lib/comfyq/outputs /var/lib/comfyq/sim \
	/var/lib/comfyq/comfy /var/lib/comfyq/comfy/output \
	/var/lib/comfyq/comfy/input /var/lib/comfyq/comfy/temp; do
	install -d -o comfyq -g comfyq -m 0755 "$d"
done
