#!/usr/bin/env python3
"""Turns a Dockerfile's last stage into shell steps for rehearse.sh.

dockerfile_stage.py DOCKERFILE: prints one shell command per instruction
of the final stage, for rehearse.sh to run against a debootstrap root:
  stage_from IMAGE                   FROM (ARG defaults substituted)
  stage_copy [--from=S] [--chown=O] SRC... DST
  stage_run 'COMMAND'                RUN (shell form)
  stage_env NAME VALUE               ENV, one per variable
  stage_user NAME  stage_workdir DIR  stage_healthcheck ARG...
  stage_entrypoint ARG...  stage_cmd ARG...  (exec form)
Also ARG (recorded for FROM), EXPOSE and comments; any other instruction,
or a shell-form ENTRYPOINT, CMD or HEALTHCHECK CMD, is an error, so the
rehearsal never silently skips a step of the image.
"""
import json
import re
import shlex
import sys


def logical_lines(text):
    """Instructions with their continuation lines joined, comments dropped."""
    out, cur = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not cur and (not line or line.startswith("#")):
            continue
        if cur and line.startswith("#"):
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        out.append(cur.strip())
        cur = ""
    if cur:
        out.append(cur.strip())
    return out


def subst(s, args):
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), s)


def exec_form(rest, what):
    try:
        v = json.loads(rest)
    except json.JSONDecodeError:
        sys.exit(f"dockerfile_stage: {what} must use the exec form (JSON): {rest}")
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        sys.exit(f"dockerfile_stage: {what}: not a list of strings: {rest}")
    return v


def main():
    lines = logical_lines(open(sys.argv[1]).read())
    args, stages, cur = {}, [], None
    for ln in lines:
        word, _, rest = ln.partition(" ")
        word, rest = word.upper(), rest.strip()
        if word == "FROM":
            cur = []
            stages.append(cur)
            image = subst(rest.split()[0], args)
            cur.append(("stage_from", [image]))
            continue
        if word == "ARG":
            name, _, default = rest.partition("=")
            if cur is None:
                args[name] = default
            elif default:
                args.setdefault(name, default)
            continue
        if cur is None:
            sys.exit(f"dockerfile_stage: {word} before FROM")
        cur.append((word, rest))
    out = []
    for item in stages[-1]:
        if item[0] == "stage_from":
            out.append("stage_from " + shlex.quote(item[1][0]))
            continue
        word, rest = item
        if word == "COPY":
            out.append("stage_copy " + " ".join(shlex.quote(w) for w in shlex.split(rest)))
        elif word == "RUN":
            out.append("stage_run " + shlex.quote(rest))
        elif word == "ENV":
            for w in shlex.split(rest):
                name, eq, value = w.partition("=")
                if not eq:
                    sys.exit(f"dockerfile_stage: ENV {rest}: use NAME=VALUE")
                out.append(f"stage_env {shlex.quote(name)} {shlex.quote(value)}")
        elif word == "USER":
            out.append("stage_user " + shlex.quote(rest))
        elif word == "WORKDIR":
            out.append("stage_workdir " + shlex.quote(rest))
        elif word == "HEALTHCHECK":
            m = re.search(r"\bCMD\s+(\[.*\])\s*$", rest)
            if not m:
                sys.exit(f"dockerfile_stage: HEALTHCHECK must be CMD [exec form]: {rest}")
            out.append("stage_healthcheck " + " ".join(shlex.quote(a) for a in exec_form(m.group(1), "HEALTHCHECK")))
        elif word in ("ENTRYPOINT", "CMD"):
            out.append(f"stage_{word.lower()} " + " ".join(shlex.quote(a) for a in exec_form(rest, word)))
        elif word == "EXPOSE":
            continue
        else:
            sys.exit(f"dockerfile_stage: {word} is not rehearsed; teach dockerfile_stage.py")
    print("\n".join(out))


if __name__ == "__main__":
    main()
