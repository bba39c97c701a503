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
#                      the openssl CLI (tests/lib/tls.sh makes certificates)
#   PKGS_FUZZ          the libFuzzer targets: clang
#   PKGS_BROWSER       a headless browser for the dashboard's test
#                      (tests/integration/dashboard.sh installs it)
#   PKGS_EXAMPLES_PY   the Python client examples' Redis client, redis-py
#                      (deploy/examples/python; tests/integration/examples.sh
#                      installs it)
#   PKGS_EXAMPLES_NODE Node and npm for the Node examples, installed only
#                      where no node or npm is on PATH (Debian 12's Node is
#                      18, the least they take; ioredis comes from npm)
#   pkgs_fuzz_runtime  prints the package of libFuzzer's runtime, which
#                      Debian names after clang's major version and clang
#                      only recommends; call it once clang is installed
# tests/run.sh installs build, run and test; tests/fuzz/run.sh fuzz (the
# libraries come from tests/run.sh); deploy/demo.sh build and run.

PKGS_BUILD="build-essential cmake pkg-config libhiredis-dev
libcurl4-openssl-dev libcjson-dev libevent-dev libstb-dev libturbojpeg0-dev
libwslay-dev libssl-dev"
PKGS_RUN="redis-server redis-tools curl libevent-openssl-2.1-7"
PKGS_TEST="procps jq python3 openssl"
PKGS_FUZZ="clang"
PKGS_BROWSER="chromium"
PKGS_EXAMPLES_PY="python3-redis"
PKGS_EXAMPLES_NODE="nodejs npm"

pkgs_fuzz_runtime() {
	echo "libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev"
}
