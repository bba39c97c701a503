#!/usr/bin/env python3
"""bench/report.py: the table of bench/run.sh.

Reads the per-run metric files of bench_e2e (comfyq) and
bench/anchors/bullmq.js (BullMQ), one flat JSON object each, and the
machine description; prints one table of median (min-max) over the runs
with the ratio comfyq/BullMQ of the medians and the issue's targets;
writes it all as JSON; and, with --readme, puts the markdown table between
the results markers of bench/README.md.

  report.py --machine FILE --out FILE [--readme FILE] [--seconds N]
            --comfyq RUN.json... [--bullmq RUN.json...]
            [--comfyq-once FILE] [--bullmq-once FILE]
  report.py --from RESULTS.json --out FILE [--readme FILE]

A --*-once file holds a measure made once, outside the runs (the
default-lease reclaim); its figures join the runs' but it is no run.
"""
import argparse
import json
import re
import statistics
import sys

# (section, label, key, unit): unit scales the stored value for display
# (us -> ms, kb -> MiB); None: a plain number.
ROWS = [
    ("1. latency, idle worker, one job at a time", None, None, None),
    ("", "enqueue -> POST /prompt (BullMQ: handler starts) p50, ms", "dispatch_p50_us", "ms"),
    ("", "  p90", "dispatch_p90_us", "ms"),
    ("", "  p99", "dispatch_p99_us", "ms"),
    ("", "enqueue -> terminal event at an XREAD producer p50, ms", "terminal_p50_us", "ms"),
    ("", "  p90", "terminal_p90_us", "ms"),
    ("", "  p99", "terminal_p99_us", "ms"),
    ("2. GPU idle gap per job, queue kept full", None, None, None),
    ("", "1 slot (BullMQ: concurrency 1), ms", "gap1_us", "ms"),
    ("", "2 slots (BullMQ: concurrency 2, one serial GPU), ms", "gap2_us", "ms"),
    ("3. throughput, no-op jobs", None, None, None),
    ("", "1 worker, 1 slot: jobs/s", "tp1_jobs_s", None),
    ("", "  worker CPU ms/job", "tp1_worker_cpu_us", "ms"),
    ("", "  sim CPU ms/prompt", "tp1_sim_cpu_us", "ms"),
    ("", "  redis-server CPU ms/job", "tp1_redis_cpu_us", "ms"),
    ("", "best configuration: jobs/s", "tpbest_jobs_s", None),
    ("", "  worker CPU ms/job", "tpbest_worker_cpu_us", "ms"),
    ("", "  sim CPU ms/prompt", "tpbest_sim_cpu_us", "ms"),
    ("", "  redis-server CPU ms/job", "tpbest_redis_cpu_us", "ms"),
    ("4. Redis cost per job (1 worker, queue full, enqueue included)", None, None, None),
    ("", "commands, all (INFO commandstats)", "redis_cmds", None),
    ("", "  of them the enqueue's", "enqueue_cmds", None),
    ("", "  sent by clients (MONITOR run)", "redis_cmds_client", None),
    ("", "  run inside functions/scripts (MONITOR run)", "redis_cmds_inside", None),
    ("", "socket round trips (total_reads_processed)", "redis_round_trips", None),
    ("", "  of them the enqueue's (pipelined by 100)", "enqueue_round_trips", None),
    ("", "redis-server CPU, ms", "redis_cpu_us", "ms"),
    ("", "  of it the enqueue's, ms", "enqueue_cpu_us", "ms"),
    ("", "fleet one Redis core carries, jobs/s", "fleet_jobs_s", None),
    ("5. worker, cancel, crash", None, None, None),
    ("", "worker RSS idle, MiB", "rss_idle_kb", "MiB"),
    ("", "worker RSS under load (max), MiB", "rss_load_kb", "MiB"),
    ("", "cancel -> interrupt p50, ms", "cancel_p50_us", "ms"),
    ("", "  max", "cancel_max_us", "ms"),
    ("", "kill -9 -> claimed again, short leases (2 s), ms", "reclaim_short_ms", None),
    ("", "  default leases (30 s), ms", "reclaim_default_ms", None),
    ("model-aware claiming, 3 checkpoints, 2 workers", None, None, None),
    ("", "FIFO: makespan ms", "fifo_makespan_ms", None),
    ("", "  checkpoint loads", "fifo_loads", None),
    ("", "model-aware: makespan ms", "aware_makespan_ms", None),
    ("", "  checkpoint loads", "aware_loads", None),
]

SCALE = {"ms": 1e-3, "MiB": 1 / 1024.0, None: 1.0}


def load(paths):
    runs = []
    for p in paths:
        with open(p) as f:
            runs.append(json.load(f))
    return runs


def summary(runs, key):
    v = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
    if not v:
        return None
    return {"median": statistics.median(v), "min": min(v), "max": max(v),
            "runs": v}


def fmt_num(x):
    a = abs(x)
    if a >= 1000:
        return f"{x:.0f}"
    if a >= 100:
        return f"{x:.1f}"
    if a >= 10:
        return f"{x:.2f}"
    return f"{x:.3f}"


def cell(s, unit):
    if s is None:
        return "-"
    k = SCALE[unit]
    m, lo, hi = s["median"] * k, s["min"] * k, s["max"] * k
    if len(s["runs"]) == 1:
        return fmt_num(m)
    return f"{fmt_num(m)} ({fmt_num(lo)}-{fmt_num(hi)})"


def targets(c, b, model_aware):
    """The issue's targets: (name, status, detail)."""
    def med(s, key):
        x = s.get(key)
        return None if x is None else x["median"]

    out = []

    def vs_bullmq(name, key, unit):
        cv, bv = med(c, key), med(b, key)
        k, u = SCALE[unit], f" {unit}" if unit else ""
        if cv is None:
            out.append((name, "not measured", ""))
        elif bv is None:
            out.append((name, "n/a",
                        f"comfyq {fmt_num(cv * k)}{u}; BullMQ not run"))
        else:
            out.append((name, "met" if cv <= bv else "NOT met",
                        f"comfyq {fmt_num(cv * k)}{u} vs BullMQ "
                        f"{fmt_num(bv * k)}{u}"))

    vs_bullmq("Redis commands/job <= BullMQ's", "redis_cmds", None)
    vs_bullmq("redis-server CPU/job <= BullMQ's", "redis_cpu_us", "ms")
    rt = med(c, "redis_round_trips")
    out.append(("socket round trips/job <= 2",
                "not measured" if rt is None else
                ("met" if rt <= 2 else "NOT met"),
                "" if rt is None else f"comfyq {fmt_num(rt)}"))
    vs_bullmq("terminal event p50 <= BullMQ's completion notice",
              "terminal_p50_us", "ms")
    sc = med(c, "tp1_sim_cpu_us")
    out.append(("sim CPU/prompt < 100 us",
                "not measured" if sc is None else
                ("met" if sc < 100 else "NOT met"),
                "" if sc is None else f"{fmt_num(sc)} us"))
    fifo, aware = med(c, "fifo_makespan_ms"), med(c, "aware_makespan_ms")
    if model_aware != "built":
        out.append(("model-aware makespan <= 0.6x FIFO", "not built",
                    "the worker has no model-aware setting yet"))
    elif fifo is None or aware is None:
        out.append(("model-aware makespan <= 0.6x FIFO", "not measured", ""))
    else:
        r = aware / fifo
        out.append(("model-aware makespan <= 0.6x FIFO",
                    "met" if r <= 0.6 else "NOT met", f"{r:.2f}x FIFO"))
    return out


def table(machine, c, b, ratios, tg, md):
    lines = []
    if md:
        lines.append("| measure | comfyq | BullMQ | comfyq/BullMQ |")
        lines.append("|---|---|---|---|")
    for section, label, key, unit in ROWS:
        if key is None:
            if md:
                lines.append(f"| **{section}** | | | |")
            else:
                lines.append(section)
            continue
        cs, bs = c.get(key), b.get(key)
        if cs is None and bs is None:
            continue
        r = ratios.get(key)
        rs = "-" if r is None else f"{r:.2f}"
        if md:
            name = label.strip()
            if label.startswith("  "):
                name = "&emsp;" + name
            lines.append(f"| {name} | {cell(cs, unit)} | "
                         f"{cell(bs, unit)} | {rs} |")
        else:
            lines.append(f"  {label:<56} {cell(cs, unit):>24} "
                         f"{cell(bs, unit):>24} {rs:>7}")
    lines.append("")
    if md:
        lines.append("| target (issue 14) | status | |")
        lines.append("|---|---|---|")
        for name, status, detail in tg:
            lines.append(f"| {name} | {status} | {detail} |")
    else:
        lines.append("targets (issue 14)")
        for name, status, detail in tg:
            lines.append(f"  {name:<52} {status:<12} {detail}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--machine")
    ap.add_argument("--out", required=True)
    ap.add_argument("--readme")
    ap.add_argument("--seconds", type=int)
    ap.add_argument("--from", dest="frm")
    ap.add_argument("--comfyq", nargs="+")
    ap.add_argument("--bullmq", nargs="*", default=[])
    ap.add_argument("--comfyq-once", nargs="*", default=[])
    ap.add_argument("--bullmq-once", nargs="*", default=[])
    a = ap.parse_args()
    keys = [k for _, _, k, _ in ROWS if k]
    if a.frm:
        # again from a results file (after a change of this script)
        with open(a.frm) as f:
            old = json.load(f)
        machine, c, b = old["machine"], old["comfyq"], old["bullmq"]
        model_aware, nruns = old["model_aware"], old["runs"]
        cfgs = old.get("configs", {})
    else:
        if not a.machine or not a.comfyq:
            sys.exit("report.py: --machine and --comfyq, or --from")
        with open(a.machine) as f:
            machine = json.load(f)
        if a.seconds is not None:
            machine["seconds"] = a.seconds
        cr, br = load(a.comfyq), load(a.bullmq)
        call, ball = cr + load(a.comfyq_once), br + load(a.bullmq_once)
        c = {k: s for k in keys if (s := summary(call, k)) is not None}
        b = {k: s for k in keys if (s := summary(ball, k)) is not None}
        model_aware = next((r["model_aware"] for r in cr
                            if "model_aware" in r), "not measured")
        nruns = max(len(cr), 1)
        cfgs = {}
        for who, runs in (("comfyq", cr), ("BullMQ", br)):
            cfg = next((r["tpbest_config"] for r in runs
                        if "tpbest_config" in r), None)
            if cfg:
                cfgs[who] = cfg
    ratios = {k: c[k]["median"] / b[k]["median"] for k in keys
              if k in c and k in b and b[k]["median"] != 0}
    tg = targets(c, b, model_aware)
    took = (f", the whole run {machine['seconds']} s"
            if "seconds" in machine else "")
    head = (f"comfyq vs BullMQ {machine.get('bullmq', '-')}: median (min-max) "
            f"over {nruns} run(s) ({machine['date']}, {machine['nproc']} "
            f"cores {machine['cpu']}, Linux {machine.get('kernel', '-')}, "
            f"redis-server {machine['redis']}, node {machine.get('node', '-')}"
            f"{took})")
    notes = [f"best configuration, {who}: {cfg}" for who, cfg in cfgs.items()]
    notes.append(f"model-aware claiming: {model_aware}")
    print(head)
    print(table(machine, c, b, ratios, tg, False))
    for n in notes:
        print(n)
    res = {"machine": machine, "runs": nruns, "comfyq": c, "bullmq": b,
           "ratios": ratios, "model_aware": model_aware, "configs": cfgs,
           "notes": notes,
           "targets": [{"target": n, "status": s, "detail": d}
                       for n, s, d in tg]}
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    if a.readme:
        with open(a.readme) as f:
            text = f.read()
        md = (f"<!-- results:begin (bench/run.sh writes this) -->\n{head}\n\n"
              + table(machine, c, b, ratios, tg, True) + "\n\n"
              + "\n".join(f"- {n}" for n in notes)
              + "\n<!-- results:end -->")
        new, n = re.subn(r"<!-- results:begin.*?<!-- results:end -->", md,
                         text, flags=re.S)
        if n != 1:
            sys.exit(f"report.py: {a.readme} has no results markers")
        with open(a.readme, "w") as f:
            f.write(new)


if __name__ == "__main__":
    main()
