#!/usr/bin/env python3
"""Checks what `docker-compose config` printed for deploy/docker-compose.yml.

compose_check.py CONFIG.yml REPO_ROOT: for each profile (gpu, sim) the
services it runs are exactly the expected ones, each has a health check,
depends only on services of the same profile and only once they are
healthy; each worker names its profile's ComfyUI (or sim) by service name
and port, which listens on all addresses there, and waits for it; a worker
stops with a stop_grace_period above its drain-grace-s; the workers'
output folder is a volume the scheduler reads at its output-dir; the
janitor's clean-dirs are ComfyUI's (the sim's) folders on a volume both
mount; only the gpu profile reserves a GPU; Redis keeps an append-only
file on a volume; the builds use the repository root and existing
Dockerfiles; every comfyq container runs a command the entry point knows.
Prints one line per profile, then every problem found; exit 1 if any.
"""
import os
import re
import sys

import yaml

PROFILES = {
    "gpu": {"redis", "scheduler", "janitor", "comfyui", "worker"},
    "sim": {"redis", "scheduler", "janitor", "sim", "worker-sim"},
}
# The entry point's programs (deploy/docker/entrypoint.sh).
ENTRY = {"worker", "janitor", "scheduler", "sim", "comfyui", "pod", "cli"}
DRAIN_GRACE_DEFAULT = 30  # comfyq-worker's drain-grace-s

problems = []


def bad(msg):
    problems.append(msg)


def seconds(text):
    """Compose durations: 45s, 1m30s, 2m, 1h, or a bare number of seconds."""
    text = str(text)
    if re.fullmatch(r"\d+", text):
        return int(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text}")
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    return sum(float(n) * scale[u] for n, u in parts)


def mounts(svc):
    """(source, target, read_only) of each volume, short or long syntax."""
    out = []
    for v in svc.get("volumes") or []:
        if isinstance(v, dict):
            out.append((v.get("source"), v.get("target"), bool(v.get("read_only"))))
        else:
            f = v.split(":")
            out.append((f[0], f[1], len(f) > 2 and "ro" in f[2].split(",")))
    return out


def volume_at(svc, path):
    """The named volume (and its mount point) that holds path in svc."""
    best = None
    for src, tgt, _ in mounts(svc):
        if (path == tgt or path.startswith(tgt.rstrip("/") + "/")) and not src.startswith("/"):
            if best is None or len(tgt) > len(best[1]):
                best = (src, tgt)
    return best


def env(svc):
    e = svc.get("environment") or {}
    if isinstance(e, list):
        e = dict(x.split("=", 1) for x in e)
    return {k: ("" if v is None else str(v)) for k, v in e.items()}


def gpus(svc):
    devs = (((svc.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices") or []
    return [d for d in devs if "gpu" in (d.get("capabilities") or [])]


def check_profile(services, profile, root):
    sel = {n for n, s in services.items() if not s.get("profiles") or profile in s["profiles"]}
    print(f"profile {profile}: " + " ".join(sorted(sel)))
    if sel != PROFILES[profile]:
        bad(f"{profile}: runs {sorted(sel)}, want {sorted(PROFILES[profile])}")
    for name in sorted(sel):
        svc = services[name]
        if not (svc.get("healthcheck") or {}).get("test"):
            bad(f"{profile}: {name} has no health check")
        for dep, cond in (svc.get("depends_on") or {}).items():
            if dep not in sel:
                bad(f"{profile}: {name} depends on {dep}, which this profile does not run")
            if (cond or {}).get("condition") != "service_healthy":
                bad(f"{profile}: {name} starts before {dep} is healthy")
        image = str(svc.get("image", ""))
        if image.startswith("comfyq"):
            cmd = svc.get("command") or []
            if not cmd or cmd[0] not in ENTRY:
                bad(f"{profile}: {name} runs {cmd}, which the entry point does not know")
        if profile == "sim" and gpus(svc):
            bad(f"sim: {name} reserves a GPU")
    comfy = [n for n in sel if n in ("comfyui", "sim")]
    workers = [n for n in sel if n.startswith("worker")]
    if len(comfy) != 1 or len(workers) != 1:
        bad(f"{profile}: want one ComfyUI and one worker service, have {comfy} and {workers}")
        return
    comfy, worker = comfy[0], workers[0]
    cs, ws = services[comfy], services[worker]
    ce, we = env(cs), env(ws)
    if profile == "gpu" and not gpus(cs):
        bad("gpu: comfyui reserves no GPU")
    # The worker reaches its ComfyUI by service name, and waits for it.
    m = re.fullmatch(r"http://([a-z0-9_-]+):(\d+)", we.get("COMFYQ_COMFYUI_URL", ""))
    if not m:
        bad(f"{profile}: {worker}'s COMFYQ_COMFYUI_URL '{we.get('COMFYQ_COMFYUI_URL')}' is not http://SERVICE:PORT")
    else:
        host, port = m.groups()
        if host != comfy:
            bad(f"{profile}: {worker} talks to {host}, not {comfy}")
        cport = ce.get("COMFYUI_PORT") if comfy == "comfyui" else ce.get("COMFYQ_PORT")
        if cport != port:
            bad(f"{profile}: {worker} uses port {port}, {comfy} listens on {cport}")
        listen = ce.get("COMFYUI_LISTEN") if comfy == "comfyui" else ce.get("COMFYQ_LISTEN")
        if listen != "0.0.0.0":
            bad(f"{profile}: {comfy} listens on '{listen}', which other containers cannot reach")
        if comfy not in (ws.get("depends_on") or {}):
            bad(f"{profile}: {worker} does not wait for {comfy}")
    # SIGTERM, then drain-grace-s for jobs in flight, then Docker's SIGKILL.
    drain = int(we.get("COMFYQ_DRAIN_GRACE_S") or DRAIN_GRACE_DEFAULT)
    if "stop_grace_period" not in ws:
        bad(f"{profile}: {worker} has no stop_grace_period (Docker's default is 10 s)")
    else:
        grace = seconds(ws["stop_grace_period"])
        if grace <= drain:
            bad(f"{profile}: {worker}'s stop_grace_period {grace:g} s is not above drain-grace-s {drain}")
    # Outputs: the worker writes them where the scheduler reads them.
    sched = services["scheduler"]
    wout, sout = we.get("COMFYQ_OUTPUT_DIR"), env(sched).get("COMFYQ_OUTPUT_DIR")
    wv = volume_at(ws, wout or "")
    sv = volume_at(sched, sout or "")
    if not wv or not sv or wv[0] != sv[0]:
        bad(f"{profile}: {worker}'s output-dir {wout} ({wv}) is not the volume of the scheduler's {sout} ({sv})")
    # The janitor cleans the folders the ComfyUI service writes.
    jan = services["janitor"]
    data = ce.get("COMFYUI_DATA") if comfy == "comfyui" else ce.get("COMFYQ_BASE_DIRECTORY")
    cv = volume_at(cs, data or "")
    dirs = dict(kv.split("=", 1) for kv in env(jan).get("COMFYQ_CLEAN_DIRS", "").split(",") if "=" in kv)
    if set(dirs) != {"output", "temp", "input"}:
        bad(f"{profile}: the janitor cleans {sorted(dirs)}, want output, temp and input")
    for kind, path in dirs.items():
        jv = volume_at(jan, path)
        if path != f"{data}/{kind}" or not jv or not cv or jv[0] != cv[0]:
            bad(f"{profile}: the janitor's {kind} folder {path} ({jv}) is not {comfy}'s {data}/{kind} ({cv})")


def main():
    cfg = yaml.safe_load(open(sys.argv[1]))
    root = os.path.realpath(sys.argv[2])
    services = cfg["services"]
    for profile in PROFILES:
        check_profile(services, profile, root)
    redis = services.get("redis", {})
    cmd = redis.get("command") or []
    if isinstance(cmd, str):
        cmd = cmd.split()
    if "--appendonly" not in cmd or cmd[cmd.index("--appendonly") + 1 :][:1] != ["yes"]:
        bad(f"redis runs {cmd}: no --appendonly yes")
    if not volume_at(redis, "/data"):
        bad("redis keeps /data on no named volume")
    built = 0
    for name, svc in services.items():
        b = svc.get("build")
        if not b:
            continue
        built += 1
        ctx = os.path.realpath(b["context"] if isinstance(b, dict) else b)
        if ctx != root:
            bad(f"{name} builds from {ctx}, not the repository root")
        df = os.path.join(ctx, b.get("dockerfile", "Dockerfile"))
        if not os.path.isfile(df):
            bad(f"{name}: no Dockerfile at {df}")
    if built < 2:
        bad(f"{built} services build an image; want both images built")
    for p in problems:
        print("problem:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
