# Assertions for the shell tests. Source it; it sets passes and fails and
# needs $tmp for the output of `check`. Every failure prints what was seen.
#   check NAME WANT-EXIT CMD...   run CMD, output in $tmp/out, check its exit
#   has NAME REGEX                the last output matches (extended regex)
#   hasf NAME TEXT                the last output holds TEXT (fixed string)
#   eq NAME GOT WANT              two strings are equal
#   ok; bad MESSAGE               count a pass or a failure by hand
#   finish                        the closing "N passed, N failed" line

passes=0 fails=0

ok() { passes=$((passes + 1)); }
bad() {
	echo "FAIL $*"
	fails=$((fails + 1))
}
check() {
	local name=$1 want=$2 got
	shift 2
	"$@" >"$tmp/out" 2>&1
	got=$?
	if [ "$got" -ne "$want" ]; then
		bad "$name: exit $got, want $want"
		sed 's/^/    /' "$tmp/out"
		return 1
	fi
	ok
}
has() {
	if grep -qE -- "$2" "$tmp/out"; then ok; else
		bad "$1: output lacks /$2/"
		sed 's/^/    /' "$tmp/out"
	fi
}
hasf() {
	if grep -qF -- "$2" "$tmp/out"; then ok; else
		bad "$1: output lacks '$2'"
		sed 's/^/    /' "$tmp/out"
	fi
}
eq() {
	if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', want '$3'"; fi
}
finish() {
	echo "$passes passed, $fails failed"
	[ "$fails" -eq 0 ] && [ "$passes" -gt 0 ]
}

# free_port: a loopback TCP port nothing listens on now (the kernel picks
# it), for a process the test starts later by a command line of its own.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
