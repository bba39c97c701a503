# deps_install PACKAGE...: installs the Debian packages that are missing,
# with apt-get as root or through sudo; otherwise prints the exact command
# and fails. Shared by tests/run.sh, tests/fuzz/run.sh and deploy/demo.sh;
# the package names are in packages.sh.
deps_install() {
	local missing="" p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q "install ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	local apt="apt-get install -y --no-install-recommends$missing"
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
			sudo="sudo"
		else
			echo "missing packages:$missing" >&2
			echo "run as root: apt-get update && $apt" >&2
			return 1
		fi
	fi
	echo "installing:$missing" >&2
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	# shellcheck disable=SC2086
	$sudo env DEBIAN_FRONTEND=noninteractive $apt
}
