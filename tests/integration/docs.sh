#!/usr/bin/env bash
# README documents every setting of every program: each --NAME that a
# program's --help prints must appear in README.md as `NAME`.
#   docs.sh BIN_DIR
set -u
BIN=$1
README=$(cd "$(dirname "$0")/../.." && pwd)/README.md
passes=0 fails=0
for prog in comfyq-worker comfyq-janitor comfyq-sim; do
	if ! help=$("$BIN/$prog" --help 2>&1); then
		echo "FAIL $prog --help failed"
		fails=$((fails + 1))
		continue
	fi
	for name in $(echo "$help" | grep -oE '^  --[a-z0-9-]+' | sed 's/^  --//'); do
		if grep -qF "\`$name\`" "$README"; then
			passes=$((passes + 1))
		else
			echo "FAIL README.md does not document $prog --$name"
			fails=$((fails + 1))
		fi
	done
done
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ] && [ "$passes" -gt 0 ]
