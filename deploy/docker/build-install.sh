#!/bin/sh
# build-install.sh SRC BUILD DESTDIR [CMAKE_ARG...]: the build stage's one
# step, shared by the Dockerfiles and rehearse.sh: configures SRC into
# BUILD for prefix /usr/local with data under /var/lib/comfyq (release
# build, no sanitizers), builds what `cmake --install` installs, and
# installs it, stripped, under DESTDIR (DESTDIR/usr/local/bin/comfyq, ...).
# Extra arguments go to cmake's configure step (-DCOMFYQ_CUDA=OFF).
set -eu
src=$1 build=$2 dest=$3
shift 3
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DCMAKE_INSTALL_PREFIX=/usr/local -DCMAKE_INSTALL_LOCALSTATEDIR=/var \
	-DASAN=OFF -DUBSAN=OFF "$@"
cmake --build "$build" -j "${JOBS:-$(nproc)}" --target comfyq comfyq-worker \
	comfyq-janitor comfyq-scheduler comfyq-sim comfyq_examples
DESTDIR=$dest cmake --install "$build" --strip
