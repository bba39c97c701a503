#!/usr/bin/env bash
# The tree keeps the shape README's Layout gives it:
#   (a) no #include circle: a module (a .c, its .h and its private x_int.h,
#       or a .h alone) never reaches itself through the "x.h" includes of
#       the tree, neither within one folder nor across folders (which would also break the
#       layers: base, workflow, programs);
#   (b) no .c or .h file over 700 lines outside tests/;
#   (c) no file names DESIGN.md, which the repository does not have (the
#       design document is docs/design.md).
# Every failure prints the files, lines or includes that make it.
#   layout.sh [SOURCE_DIR]   (default: the tree this script is in)
set -u
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root" || exit 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-layout.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
. tests/lib/check.sh
self=tests/integration/layout.sh

# The files of the tree: what git knows (tracked, or new and not ignored),
# else everything outside build directories.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files --cached --others --exclude-standard
else
	find . \( -name 'build*' -o -name .git \) -prune -o -type f -print |
		sed 's|^\./||'
fi | sort -u | while IFS= read -r f; do
	[ -f "$f" ] && printf '%s\n' "$f"
done >"$tmp/files"
grep -E '\.(c|h|cu)$' "$tmp/files" >"$tmp/sources"

# (a) Includes: "FILE<TAB>LINE<TAB>NAME" for every #include "NAME".
while IFS= read -r f; do
	awk -v f="$f" '
	match($0, /^[ \t]*#[ \t]*include[ \t]*"[^"]+"/) {
		s = substr($0, RSTART, RLENGTH)
		sub(/^[^"]*"/, "", s)
		sub(/"$/, "", s)
		printf "%s\t%d\t%s\n", f, NR, s
	}' "$f"
done <"$tmp/sources" >"$tmp/includes"

# Resolves each name as the compiler would find it in this tree: next to
# the includer, else the one file of the tree with that path or base name
# (names the tree does not have, system or generated, are left out). A
# module is a path without its extension; each include is an edge between
# two modules. Tarjan's algorithm gives the strongly connected components;
# every one of more than one module holds a circle, printed as the chain
# of includes that closes it.
awk -F '\t' '
function dirname(p) { return (p ~ /\// ? substr(p, 1, match(p, /\/[^\/]*$/) - 1) : "") }
function base(p) { sub(/.*\//, "", p); return (p) }
function module(p) { sub(/\.(c|h|cu)$/, "", p); sub(/_int$/, "", p); return (p) }
function normal(p,   n, i, k, part, out, o) {
	n = split(p, part, "/")
	k = 0
	for (i = 1; i <= n; i++) {
		if (part[i] == "." || part[i] == "")
			continue
		if (part[i] == ".." && k > 0) { k--; continue }
		out[++k] = part[i]
	}
	o = ""
	for (i = 1; i <= k; i++)
		o = o (i > 1 ? "/" : "") out[i]
	return (o)
}
function resolve(from, name,   d, p) {
	d = dirname(from)
	p = normal((d == "" ? "" : d "/") name)
	if (p in exists)
		return (p)
	if (name in bypath)
		return (name)
	if (nbase[base(name)] == 1 && name !~ /\//)
		return (bybase[base(name)])
	return ("")
}
function strong(v,   i, w) {
	index_of[v] = lowlink[v] = ++counter
	stack[++sp] = v
	on_stack[v] = 1
	for (i = 1; i <= nout[v]; i++) {
		w = out[v, i]
		if (!(w in index_of)) {
			strong(w)
			if (lowlink[w] < lowlink[v])
				lowlink[v] = lowlink[w]
		} else if (on_stack[w] && index_of[w] < lowlink[v])
			lowlink[v] = index_of[w]
	}
	if (lowlink[v] == index_of[v]) {
		ncomp++
		do {
			w = stack[sp--]
			on_stack[w] = 0
			comp[w] = ncomp
			size[ncomp]++
		} while (w != v)
	}
}
# One circle through s inside its component: a breadth-first walk back to s.
function circle(s,   q, head, tail, v, i, w, seen, prev, path, n, k) {
	head = 1; tail = 0
	for (i = 1; i <= nout[s]; i++) {
		w = out[s, i]
		if (comp[w] == comp[s] && !(w in seen)) {
			seen[w] = 1; prev[w] = s; q[++tail] = w
		}
	}
	while (head <= tail) {
		v = q[head++]
		if (v == s)
			break
		for (i = 1; i <= nout[v]; i++) {
			w = out[v, i]
			if (comp[w] == comp[s] && !(w in seen)) {
				seen[w] = 1; prev[w] = v; q[++tail] = w
			}
		}
	}
	# path[1] is s, path[2] the module that leads back to it, path[n]
	# the first one after s.
	n = 0
	v = s
	do { path[++n] = v; v = prev[v] } while (v != s)
	printf "    %s\n", why[s, path[n]]
	for (k = n; k >= 2; k--)
		printf "    %s\n", why[path[k], path[k - 1]]
}
FILENAME == ARGV[1] {
	exists[$0] = 1
	bypath[$0] = 1
	nbase[base($0)]++
	bybase[base($0)] = $0
	next
}
{
	to = resolve($1, $3)
	if (to == "")
		next
	a = module($1); b = module(to)
	node[a] = node[b] = 1
	if (a == b || ((a, b) in edge))
		next
	edge[a, b] = 1
	out[a, ++nout[a]] = b
	why[a, b] = $1 ":" $2 " includes " to
}
END {
	for (v in node)
		if (!(v in index_of))
			strong(v)
	for (v in node)
		if (size[comp[v]] > 1 && !(comp[v] in shown)) {
			shown[comp[v]] = 1
			members = ""
			for (w in node)
				if (comp[w] == comp[v])
					members = members " " w
			printf "include circle among%s:\n", members
			circle(v)
		}
}' "$tmp/sources" "$tmp/includes" >"$tmp/circles"
if [ -s "$tmp/circles" ]; then
	bad "#include circles (module = a .c, its .h and its _int.h):"
	cat "$tmp/circles"
else
	ok
fi

# (b) Long files outside tests/.
grep -E '\.(c|h)$' "$tmp/sources" | grep -v '^tests/' | while IFS= read -r f; do
	n=$(wc -l <"$f")
	[ "$n" -gt 700 ] && printf '%s: %d lines\n' "$f" "$n"
done >"$tmp/long"
if [ -s "$tmp/long" ]; then
	bad "files over 700 lines outside tests/ (split them by stage or noun):"
	sed 's/^/    /' "$tmp/long"
else
	ok
fi

# (c) Names of a file the repository does not have.
grep -v -x -F "$self" "$tmp/files" | tr '\n' '\0' |
	xargs -0 grep -I -n -F 'DESIGN.md' -- >"$tmp/design" 2>/dev/null
if [ -s "$tmp/design" ]; then
	bad "files cite DESIGN.md, which does not exist (docs/design.md does):"
	sed 's/^/    /' "$tmp/design"
else
	ok
fi
finish
