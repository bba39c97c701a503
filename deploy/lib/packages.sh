# shellcheck shell=bash disable=SC2034
# The Debian packages comfyq needs, written once, in named groups. Source
# it, then install the groups a script needs with deps_install (deps.sh):
#   PKGS_BUILD         compile and link every program: the C toolchain,
#                      CMake and the libraries (libevent-dev holds
#                      libevent_openssl, libssl-dev OpenSSL: rediss://)
#   PKGS_RUN           run the stack on one machine: redis-server (Debian's
#                      is built with TLS), redis-cli (redis.sh pings it),
#                      curl, and libevent's OpenSSL library that rediss://
#                      needs at run time
#   PKGS_TEST          what the tests use besides: pgrep (procps), jq and
#                      python3 (the scheduler tests read JSON and JPEGs),
#                      docker-compose (`docker-compose config` checks
#                      deploy/docker-compose.yml; it brings python3-yaml,
#                      which reads its output) and systemd
#                      (`systemd-analyze verify` checks deploy/systemd/),
#                      the openssl CLI (tests/lib/tls.sh makes certificates)
#   PKGS_IMAGE         the runtime libraries of the installed programs and
#                      what the containers' health checks call (curl), and
#                      nothing else: the images' runtime stage installs
#                      exactly these (deploy/docker/setup-runtime.sh), and
#                      so does the rehearsal (deploy/docker/rehearse.sh);
#                      integration.deploy.packages checks that they hold
#                      every library the programs link
#   PKGS_REHEARSE      deploy/docker/rehearse.sh: debootstrap builds the
#                      Debian root it runs the image's steps in
#   PKGS_FUZZ          the libFuzzer targets: clang
#   PKGS_BROWSER       a headless browser for the dashboard's test
#                      (tests/integration/dashboard.sh installs it)
#   PKGS_EXAMPLES_PY   the Python client examples' Redis client, redis-py,
#                      and WebSocket client, websocket-client (comfy_client)
#                      (deploy/examples/python; tests/integration/examples.sh
#                      and comfyclient.sh install them)
#   PKGS_EXAMPLES_NODE Node and npm for the Node examples, installed only
#                      where no node or npm is on PATH (Debian 12's Node is
#                      18, the least they take; ioredis comes from npm),
#                      and for the S3 server of tests/integration/s3.sh
#                      (s3rver from npm, which takes Node 20)
#   pkgs_fuzz_runtime  prints the package of libFuzzer's runtime, which
#                      Debian names after clang's major version and clang
#                      only recommends; call it once clang is installed
# tests/run.sh installs build, run and test; tests/fuzz/run.sh fuzz (the
# libraries come from tests/run.sh); deploy/demo.sh build and run; the
# Dockerfiles build and image.

PKGS_BUILD="build-essential cmake pkg-config libhiredis-dev
libcurl4-openssl-dev libcjson-dev libevent-dev libstb-dev libturbojpeg0-dev
libwslay-dev libssl-dev"
PKGS_RUN="redis-server redis-tools curl libevent-openssl-2.1-7"
PKGS_TEST="procps jq python3 openssl docker-compose systemd"
PKGS_IMAGE="libc6 libcjson1 libcurl4 libevent-core-2.1-7 libevent-extra-2.1-7
libevent-openssl-2.1-7 libhiredis0.14 libssl3 libstb0 libturbojpeg0 libwslay1
ca-certificates curl"
PKGS_REHEARSE="debootstrap"
PKGS_FUZZ="clang"
PKGS_BROWSER="chromium"
PKGS_EXAMPLES_PY="python3-redis python3-websocket"
PKGS_EXAMPLES_NODE="nodejs npm"

pkgs_fuzz_runtime() {
	echo "libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev"
}
