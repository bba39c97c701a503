#!/usr/bin/env python3
"""Chaos soak: the whole stack (redis-server with AOF, comfyq-sim backends,
workers, janitors, schedulers, webhook receivers) under N jobs while
workers are killed and drained, sims fail and crash, Redis restarts and
pauses; then the invariants of issue 15 (checks.py). README.md here.
Exit status: 0 when every check held, 1 with the violations (job ids)
printed, 2 for a harness error."""
import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import checks  # noqa: E402
import hooks  # noqa: E402
import jobs  # noqa: E402
import procs  # noqa: E402
from procs import PREFIX  # noqa: E402


def options(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=5000, help="submissions (default 5000)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the schedule, the mix and the faults")
    ap.add_argument("--rate", type=float, default=None,
                    help="submissions a second (default: 10, or 8 from 1000 jobs)")
    ap.add_argument("--fsync", choices=["everysec", "always"], default="everysec",
                    help="the AOF's appendfsync")
    ap.add_argument("--redis-restart", choices=["shutdown", "kill", "powerloss", "none"],
                    default="shutdown", help="how Redis restarts once mid-run")
    ap.add_argument("--sentinel", action="store_true",
                    help="master, replica and 3 sentinels; one SENTINEL FAILOVER instead of the restart")
    ap.add_argument("--settle", type=float, default=120,
                    help="seconds to wait for quiescence after the last submission")
    ap.add_argument("--deadline", type=float, default=3600, help="seconds for the whole run")
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"),
                    help="build folder (its bin/ has the programs)")
    ap.add_argument("--workers", type=int, default=5, help="workers at a time (4..6)")
    ap.add_argument("--fault-rate", type=float, default=0.05, help="share of prompts a sim fault hits")
    ap.add_argument("--step-ms", type=int, default=5, help="the sims' sampler step")
    ap.add_argument("--lease-ms", type=int, default=3000, help="the workers' lease")
    ap.add_argument("--dir", default=None, help="run folder (default: a new temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the run folder after a pass")
    o = ap.parse_args(argv)
    if o.rate is None:
        o.rate = 8.0 if o.jobs >= 1000 else 10.0
    o.workers = max(4, min(6, o.workers))

    def faults_json(seed, f=o.fault_rate):
        # about f of the prompts hit one fault (execution_error, oom,
        # hang, silence, ws drop, 500s, crash), drawn by the sim's PRNG
        return json.dumps({
            "seed": seed,
            "execution_error": {"p": f * 0.25, "message": "chaos boom"},
            "oom": {"p": f * 0.15},
            "hang": {"p": f * 0.08},
            "silence": {"p": f * 0.1},
            "ws_drop": {"p": f * 0.17},
            "prompt_500": {"p": f * 0.2},
            "crash": {"p": f * 0.1},
        })
    o.faults_json = faults_json
    return o


class Chaos:
    """The seeded schedule of disturbances, run on a thread."""

    def __init__(self, stack, opts, window, log):
        self.stack, self.opts, self.log = stack, opts, log
        self.rng = random.Random(opts.seed * 104729 + 3)
        self.kills = []          # (jid, kill time) of jobs a killed worker held
        self.restarts = []
        self.pauses = 0
        self.sched_kills = 0
        self.done = threading.Event()
        n = opts.jobs
        plan = []
        for _ in range(max(3, n // 80)):
            plan.append((self.rng.uniform(0.05, 0.95) * window, "kill"))
        for _ in range(max(2, n // 250)):
            plan.append((self.rng.uniform(0.05, 0.95) * window, "drain"))
        if opts.sentinel:
            plan.append((0.45 * window, "failover"))
        elif opts.redis_restart != "none":
            plan.append((0.45 * window, "restart"))
        for f in (0.25, 0.75):
            plan.append((f * window, "pause"))
        plan.append((0.6 * window, "kill_sched"))
        plan.append((0.35 * window, "crash_sim"))
        plan.append((0.5 * window, "kill_hung"))
        self.plan = sorted(plan)

    def held_by(self, wid):
        r = self.stack.redis.client(5)
        try:
            jids = r.call("ZRANGE", PREFIX + "leases", "0", "-1") or []
            if not jids:
                return []
            ws = r.pipeline([["HGET", PREFIX + "job:" + j, "worker"] for j in jids])
            return [j for j, w in zip(jids, ws) if w == wid]
        except ConnectionError:
            return []
        finally:
            r.close()

    def live_workers(self):
        return [w for w, p in self.stack.workers.items() if p.alive() and p.killed is None]

    def busy_worker(self):
        """A live worker that holds a job (waits up to 3 s for one), else
        any live one: a kill or a drain should catch jobs in flight."""
        end = time.time() + 3
        while time.time() < end:
            live = self.live_workers()
            busy = [w for w in live if self.held_by(w)]
            if busy:
                return self.rng.choice(sorted(busy))
            time.sleep(0.05)
        live = self.live_workers()
        return self.rng.choice(sorted(live)) if live else None

    def run(self, t0):
        try:
            for at, what in self.plan:
                while time.time() < t0 + at:
                    if self.done.wait(0.05):
                        return
                self.do(what)
        except Exception:
            self.log("chaos: " + traceback.format_exc())

    def sim_faults(self, url, body):
        try:
            urllib.request.urlopen(urllib.request.Request(
                url, data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"}), timeout=5).read()
        except Exception as e:
            self.log("chaos: POST %s: %s" % (url, e))

    def do(self, what):
        st = self.stack
        if what in ("kill", "drain"):
            wid = self.busy_worker()
            if wid is None:
                return
            p = st.workers.pop(wid)
            if what == "kill":
                held = self.held_by(wid)
                t = time.time()
                p.signal(signal.SIGKILL)
                self.kills += [(j, t) for j in held]
                self.log("chaos: kill -9 %s (held %d jobs)" % (wid, len(held)))
                time.sleep(self.rng.uniform(0.3, 1.5))
            else:
                p.drained = True
                p.signal(signal.SIGTERM)
                self.log("chaos: SIGTERM %s (drain)" % wid)
            st.start_worker(p.sim)
        elif what == "restart":
            info = st.redis.restart(self.opts.redis_restart)
            self.restarts.append(info)
            self.log("chaos: redis restart %s" % json.dumps(info))
        elif what == "failover":
            info = st.redis.failover()
            self.restarts.append(info)
            self.log("chaos: %s" % json.dumps(info))
        elif what == "pause":
            ms = self.opts.lease_ms // 2
            try:
                r = st.redis.client(5)
                r.call("CLIENT", "PAUSE", str(ms))
                r.close()
                self.pauses += 1
                self.log("chaos: CLIENT PAUSE %d" % ms)
            except Exception as e:
                self.log("chaos: CLIENT PAUSE failed: %s" % e)
        elif what == "crash_sim":
            # one sure crash (the drawn ones are rare): the next prompt
            # of one sim takes the process down; the watcher restarts it
            name = self.rng.choice(sorted(st.sims))
            self.sim_faults(st.sim_url(name) + "/sim/faults", {"crash": {"nth": 1}})
            self.log("chaos: crash fault armed on %s" % name)
        elif what == "kill_hung":
            # a worker killed while its prompt hangs: the prompt stays on
            # the sim (only /interrupt ends it) and the next worker's
            # prompts wait behind it until a worker interrupts it
            name = self.rng.choice(sorted(st.sims))
            url = st.sim_url(name) + "/sim/faults"
            self.sim_faults(url, {"hang": {"nth": 1}})
            end = time.time() + 20
            fired = False
            while time.time() < end and not fired:
                time.sleep(0.1)
                try:
                    f = json.loads(urllib.request.urlopen(url, timeout=5).read())
                    fired = f["faults"].get("hang", {}).get("fired", 0) > 0
                except Exception:
                    pass
            wid = None
            for w, p in list(st.workers.items()):
                if p.sim == name and p.alive() and self.held_by(w):
                    wid = w
            if fired and wid:
                time.sleep(0.5)
                p = st.workers.pop(wid)
                held = self.held_by(wid)
                t = time.time()
                p.signal(signal.SIGKILL)
                self.kills += [(j, t) for j in held]
                self.log("chaos: kill -9 %s while its prompt hangs on %s" % (wid, name))
                st.start_worker(p.sim)
            else:
                self.log("chaos: kill_hung on %s: fired %s, worker %s" % (name, fired, wid))
            self.sim_faults(url, {"hang": json.loads(self.opts.faults_json(0))["hang"]})
        elif what == "kill_sched":
            name = self.rng.choice(sorted(st.scheds))
            p, port = st.scheds[name]
            p.signal(signal.SIGKILL)
            self.sched_kills += 1
            self.log("chaos: kill -9 %s" % name)
            time.sleep(1.0)
            st.start_sched(name, port)


def quiet(stack, subs, settle, log):
    """Waits until every acknowledged job is terminal and no lease, slot or
    webhook delivery is open; False when settle seconds passed first."""
    end = time.time() + settle
    jids = sorted(set(s.jid for s in subs if s.jid))
    last = ""
    while time.time() < end:
        stack.restart_crashed_sims()
        try:
            r = stack.redis.client(5)
            sts = []
            for i in range(0, len(jids), 500):
                sts += r.pipeline([["HGET", PREFIX + "job:" + j, "state"] for j in jids[i:i + 500]])
            open_ = sum(1 for s in sts if s not in checks.TERMINAL and s is not None)
            hooks_ = r.call("ZCARD", PREFIX + "webhooks")
            leases = r.call("ZCARD", PREFIX + "leases")
            held = 0
            for pool in r.call("SMEMBERS", PREFIX + "pools") or []:
                held += r.call("HLEN", PREFIX + "held:" + pool)
            r.close()
            now = "open jobs %d, deliveries %d, leases %d, slots held %d" % (open_, hooks_, leases, held)
            if now != last:
                log("settle: " + now)
                last = now
            if open_ == 0 and hooks_ == 0 and leases == 0 and held == 0:
                return True
        except (ConnectionError, OSError):
            pass
        time.sleep(0.5)
    return False


def main(argv):
    opts = options(argv)
    t_start = time.time()
    root = os.path.abspath(os.path.join(HERE, "..", ".."))
    build = os.path.abspath(opts.build)
    rundir = opts.dir or tempfile.mkdtemp(prefix="comfyq-chaos.", dir=os.environ.get("TMPDIR"))
    os.makedirs(rundir, exist_ok=True)
    logf = open(os.path.join(rundir, "chaos.log"), "a")

    def log(msg):
        line = "%7.1f %s" % (time.time() - t_start, msg)
        logf.write(line + "\n")
        logf.flush()
        if os.environ.get("CHAOS_VERBOSE"):
            print(line, flush=True)

    def on_deadline(*_):
        raise TimeoutError("deadline of %d s passed" % opts.deadline)
    signal.signal(signal.SIGALRM, on_deadline)
    signal.alarm(int(opts.deadline))

    stack = procs.Stack(build, root, rundir, opts)
    receivers = []
    chaos = None
    stop_codes = []
    rc = 2
    try:
        stack.redis.start()
        stack.init_library()
        for i in range(3):
            stack.start_sim("sim%d" % i, opts.seed * 100 + i)
        for i in range(opts.workers):
            stack.start_worker("sim%d" % (i % 3))
        for i in range(2):
            stack.start_janitor(i)
        for i in range(2):
            stack.start_sched("sched%d" % i)
        receivers = [hooks.Receiver("hook%d" % i, procs.SECRET, rundir, opts.seed * 31 + i)
                     for i in range(2)]
        sub = jobs.Submitter(stack, receivers, opts, log)
        plan = sub.plan()
        window = len(plan) / opts.rate
        chaos = Chaos(stack, opts, window, log)
        log("run folder %s; %d submissions over %.0f s; chaos plan %s" % (
            rundir, len(plan), window, [w for _, w in chaos.plan]))

        watching = threading.Event()

        def watch():
            while not watching.wait(0.2):
                try:
                    stack.restart_crashed_sims()
                    stack.redis.sample()
                except Exception:
                    log("watch: " + traceback.format_exc())
        wt = threading.Thread(target=watch, daemon=True)
        wt.start()
        t0 = time.time()
        ct = threading.Thread(target=chaos.run, args=(t0,), daemon=True)
        ct.start()
        sub.run(plan)
        t_sub = time.time() - t0
        log("submitted in %.1f s" % t_sub)
        chaos.done.set()
        ct.join(120)
        settled = quiet(stack, sub.subs, opts.settle, log)
        t_settle = time.time() - t0
        watching.set()
        wt.join(5)
        # the checks read Redis with everything still running, then stop
        r = stack.redis.client(30)
        loss_ok = opts.sentinel or (opts.fsync == "everysec" and opts.redis_restart == "powerloss")
        rep, lines = checks.check(r, sub.subs, stack, receivers, chaos.kills,
                                  chaos.restarts, loss_ok, [])
        stop_codes = stack.stop_all_programs()
        for p, code in stop_codes:
            if p.kind in ("worker", "janitor", "scheduler", "sim") and code not in (0, None):
                rep.bad("unclean exit on SIGTERM", "%s pid %d exit %s (log %s)" % (p.name, p.pid, code, p.log))
        for p in stack.procs:
            for line in open(p.log, errors="replace"):
                if checks.SANITIZER.search(line):
                    rep.bad("sanitizer report", "%s: %s" % (p.log, line.strip()[:200]))
                    break
        r.close()
        for p in stack.procs:
            if getattr(p, "drained", False) and p.p.poll() not in (0,):
                rep.bad("drained worker did not exit 0", "%s exit %s" % (p.name, p.p.poll()))
        if not settled:
            rep.bad("not quiet after --settle", "%.0f s" % opts.settle)
        lines.insert(0, "%-44s %s" % ("run", "%d jobs, seed %d, fsync %s, %s, %.1f s (submitted %.1f s, quiet %.1f s)" % (
            opts.jobs, opts.seed, opts.fsync,
            "sentinel failover" if opts.sentinel else "redis restart " + opts.redis_restart,
            time.time() - t_start, t_sub, t_settle)))
        lines.append("%-44s %d, scheduler kill -9: %d" % ("CLIENT PAUSE (%d ms)" % (opts.lease_ms // 2),
                                                         chaos.pauses, chaos.sched_kills))
        if not rep.notes:
            for x in chaos.restarts:
                if "events_before" in x and "events_after" in x:
                    lost = x["events_after"] < x["events_before"] or \
                        x["refunds_after"] < x["refunds_before"] or \
                        x["jobseq_after"] < x["jobseq_before"]
                    rep.notes.append(
                        "the %s lost %s: events %d before, %d after; refunds %d/%d; jobseq %d/%d" % (
                            x["how"], "writes" if lost else "nothing", x["events_before"], x["events_after"],
                            x["refunds_before"], x["refunds_after"],
                            x["jobseq_before"], x["jobseq_after"]))
        for n in rep.notes:
            lines.append("%-44s %s" % ("restart", n))
        out = "\n".join(lines)
        if rep.violations:
            out += "\n\nVIOLATIONS\n"
            for kind, items in rep.violations.items():
                out += "  %s: %d\n" % (kind, len(items))
                for x in items[:30]:
                    out += "    %s\n" % x
            out += "run folder kept: %s\n" % rundir
            rc = 1
        else:
            out += "\nall checks held\n"
            rc = 0
        print(out, flush=True)
        with open(os.path.join(rundir, "summary.txt"), "w") as f:
            f.write(out)
    except Exception:
        print("chaos: harness error:\n" + traceback.format_exc(), file=sys.stderr)
        print("run folder kept: %s" % rundir, file=sys.stderr)
        rc = 2
    finally:
        signal.alarm(0)
        if chaos:
            chaos.done.set()
        for x in receivers:
            try:
                x.stop()
            except Exception:
                pass
        stack.stop_all()
        logf.close()
    if rc == 0 and not opts.keep and not opts.dir:
        shutil.rmtree(rundir, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
