#!/usr/bin/env bash
# README documents every setting of every program: each --NAME that a
# program's --help prints must appear in README.md as `NAME`.
#   docs.sh BIN_DIR
set -u
BIN=$1
README=$(cd "$(dirname "$0")/../.." && pwd)/README.md
. "$(dirname "$0")/../lib/check.sh"
for prog in comfyq-worker comfyq-janitor comfyq-scheduler comfyq-sim; do
	if ! help=$("$BIN/$prog" --help 2>&1); then
		bad "$prog --help failed"
		continue
	fi
	for name in $(echo "$help" | grep -oE '^  --[a-z0-9-]+' | sed 's/^  --//'); do
		if grep -qF "\`$name\`" "$README"; then ok; else
			bad "README.md does not document $prog --$name"
		fi
	done
done
finish
