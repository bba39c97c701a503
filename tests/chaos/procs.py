"""The processes of a soak, started and stopped by PID, each with its log
in the run folder: redis-server (AOF; or, for --sentinel, a master, a
replica and three sentinels), comfyq-sim backends, comfyq-worker,
comfyq-janitor and comfyq-scheduler. Every process the harness ends on
purpose is marked before the signal goes, so a death the harness did not
cause is a finding (Stack.unexpected)."""
import base64
import glob
import os
import re
import signal
import socket
import subprocess
import threading
import time

import resp

SECRET = "whsec_" + base64.b64encode(b"chaos-soak-webhook-key-0123456789").decode()
QUEUE = "chaos"
PREFIX = "cq:{%s}:" % QUEUE


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_for(pred, timeout, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if pred():
                return True
        except Exception:
            pass
        time.sleep(step)
    return False


class Proc:
    """One process: kind (worker, sim, ...), name, Popen, log path."""

    def __init__(self, kind, name, argv, log, env=None):
        self.kind, self.name, self.argv, self.log = kind, name, argv, log
        self.env = env
        self.killed = None      # the signal the harness sent, or None
        self.exitcode = None
        self.started = time.time()
        self.fh = open(log, "ab")
        self.p = subprocess.Popen(argv, stdout=self.fh, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=env)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        self.killed = sig
        try:
            self.p.send_signal(sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout):
        try:
            self.exitcode = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.exitcode

    def stop(self, timeout=20):
        """SIGTERM (unless one went already: a second may kill a program
        on its way out), then SIGKILL after timeout; the exit status."""
        if self.alive():
            if self.killed != signal.SIGTERM:
                self.signal(signal.SIGTERM)
            if self.wait(timeout) is None:
                self.signal(signal.SIGKILL)
                self.wait(10)
        self.exitcode = self.p.poll()
        self.fh.close()
        return self.exitcode


class RedisSet:
    """The queue's Redis. Plain: one redis-server with AOF. sentinel: a
    master, a replica, three sentinels (min-replicas-to-write 1, as README's
    Redis Sentinel asks)."""

    def __init__(self, stack, fsync, sentinel):
        self.stack, self.fsync, self.sentinel = stack, fsync, sentinel
        self.procs = {}
        self.ports = {}
        self.sizes = []          # (time, bytes) of the AOF, for powerloss
        self.lock = threading.Lock()

    def conf(self, name, port, extra):
        d = os.path.join(self.stack.dir, name)
        os.makedirs(d, exist_ok=True)
        lines = ["port %d" % port, "bind 127.0.0.1", "dir " + d,
                 'save ""', "daemonize no", "logfile " + os.path.join(d, "log")]
        lines += extra
        path = os.path.join(d, "conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def aof_lines(self):
        return ["appendonly yes", "appendfsync " + self.fsync,
                "aof-use-rdb-preamble yes"]

    def start_server(self, name):
        port = self.ports[name]
        extra = self.aof_lines()
        if self.sentinel:
            extra += ["min-replicas-to-write 1", "min-replicas-max-lag 5"]
            if name == "replica":
                extra.append("replicaof 127.0.0.1 %d" % self.ports["master"])
        path = self.conf(name, port, extra)
        p = self.stack.spawn("redis", name, ["redis-server", path])
        self.procs[name] = p
        ok = wait_for(lambda: resp.Redis("127.0.0.1", port, timeout=1).call("PING") == "PONG", 30)
        if not ok:
            raise RuntimeError("redis %s did not start" % name)

    def start(self):
        if not self.sentinel:
            self.ports["master"] = free_port()
            self.start_server("master")
            self.url = "redis://127.0.0.1:%d" % self.ports["master"]
            return
        self.ports["master"] = free_port()
        self.ports["replica"] = free_port()
        self.start_server("master")
        self.start_server("replica")
        rp = self.ports["replica"]
        if not wait_for(lambda: "master_link_status:up" in resp.Redis(
                "127.0.0.1", rp, timeout=1).call("INFO", "replication"), 30, 0.1):
            raise RuntimeError("the replica did not sync")
        mp = self.ports["master"]
        wait_for(lambda: "connected_slaves:1" in resp.Redis(
            "127.0.0.1", mp, timeout=1).call("INFO", "replication"), 10, 0.1)
        time.sleep(1.2)   # a replica ack within min-replicas-max-lag
        self.sports = [free_port() for _ in range(3)]
        for sp in self.sports:
            name = "sentinel%d" % sp
            path = self.conf(name, sp, [
                "sentinel monitor mymaster 127.0.0.1 %d 2" % self.ports["master"],
                "sentinel down-after-milliseconds mymaster 2000",
                "sentinel failover-timeout mymaster 20000"])
            self.procs[name] = self.stack.spawn(
                "sentinel", name, ["redis-server", path, "--sentinel"])
        self.url = "redis+sentinel://" + ",".join(
            "127.0.0.1:%d" % p for p in self.sports) + "/mymaster"

        def seen():
            r = resp.Redis("127.0.0.1", self.sports[0], timeout=1)
            m = resp.pairs(r.call("SENTINEL", "master", "mymaster"))
            return int(m.get("num-other-sentinels", 0)) == 2 and \
                int(m.get("num-slaves", 0)) == 1
        if not wait_for(seen, 40, 0.2):
            raise RuntimeError("the sentinels did not find each other")

    def master_port(self):
        if not self.sentinel:
            return self.ports["master"]
        for sp in self.sports:
            try:
                r = resp.Redis("127.0.0.1", sp, timeout=1).call(
                    "SENTINEL", "get-master-addr-by-name", "mymaster")
                if isinstance(r, list):
                    return int(r[1])
            except Exception:
                continue
        return self.ports["master"]

    def client(self, timeout=10):
        return resp.Redis("127.0.0.1", self.master_port(), timeout=timeout)

    def aof_file(self, name="master"):
        d = os.path.join(self.stack.dir, name, "appendonlydir")
        incr = sorted(glob.glob(os.path.join(d, "*.incr.aof")),
                      key=lambda p: int(re.findall(r"\.(\d+)\.incr\.aof$", p)[0]))
        return incr[-1] if incr else None

    def sample(self):
        """The AOF's size now (kept 5 s), for a simulated power loss."""
        f = self.aof_file()
        if f:
            try:
                with self.lock:
                    self.sizes.append((time.time(), os.path.getsize(f)))
                    self.sizes = [s for s in self.sizes if s[0] > time.time() - 5]
            except OSError:
                pass

    def count_into(self, info, when):
        """The events and refunds streams' lengths and the job sequence,
        into info under <name>_<when> (or <when>_error)."""
        c = self.client(5)
        try:
            info["events_" + when] = c.call("XLEN", PREFIX + "events")
            info["refunds_" + when] = c.call("XLEN", PREFIX + "refunds")
            info["jobseq_" + when] = int(c.call("GET", PREFIX + "jobseq") or 0)
        except Exception as e:
            info[when + "_error"] = str(e)
        c.close()

    def restart(self, how):
        """Stops the (plain) server, how: shutdown (SHUTDOWN: the AOF is
        written and fsynced), kill (SIGKILL: what write() reached the
        kernel survives) or powerloss (SIGKILL, then, with everysec, the
        AOF cut back to its size of about 1 s before: everysec's window
        lost, as on a power cut; with always nothing is cut, as every
        write was fsynced before its reply); then starts it again on the
        same port. Returns what it did."""
        p = self.procs["master"]
        info = {"how": how}
        self.count_into(info, "before")
        t0 = time.time()
        if how == "shutdown":
            p.killed = "shutdown"
            try:
                resp.Redis("127.0.0.1", self.ports["master"], timeout=30).call("SHUTDOWN")
            except Exception:
                pass
        else:
            p.signal(signal.SIGKILL)
        p.wait(60)
        if how == "powerloss" and self.fsync == "always":
            # always: each write is fsynced before its reply, so a power
            # cut loses no acknowledged write; the AOF stays whole
            info["aof_cut_bytes"] = 0
        elif how == "powerloss":
            f = self.aof_file()
            with self.lock:
                old = [s for s in self.sizes if s[0] <= time.time() - 1.0]
            if f and old:
                size = os.path.getsize(f)
                keep = old[-1][1]
                os.truncate(f, keep)
                info["aof_cut_bytes"] = size - keep
        self.start_server("master")
        info["down_s"] = round(time.time() - t0, 2)
        self.count_into(info, "after")
        return info

    def failover(self):
        """SENTINEL FAILOVER; waits until the replica is the master."""
        t0 = time.time()
        old = self.master_port()
        r = resp.Redis("127.0.0.1", self.sports[0], timeout=5).call(
            "SENTINEL", "FAILOVER", "mymaster")
        ok = wait_for(lambda: self.master_port() != old, 30, 0.1)
        return {"how": "sentinel failover", "reply": str(r), "switched": ok,
                "old": old, "new": self.master_port(),
                "down_s": round(time.time() - t0, 2)}


class Stack:
    """Every process of a soak."""

    def __init__(self, build, root, rundir, opts):
        self.bin = os.path.join(build, "bin")
        self.root, self.dir, self.opts = root, rundir, opts
        self.workflows = os.path.join(root, "workflows")
        self.out = os.path.join(rundir, "out")
        os.makedirs(self.out, exist_ok=True)
        self.procs = []          # every Proc ever started
        self.lock = threading.Lock()
        self.counts = {}
        self.redis = RedisSet(self, opts.fsync, opts.sentinel)
        self.sims = {}           # name -> (Proc, port, seed)
        self.workers = {}        # name -> Proc (the live one)
        self.scheds = {}         # name -> (Proc, port)
        self.nworker = 0
        self.sim_restarts = 0
        self.env = dict(os.environ)
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        self.env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")

    def spawn(self, kind, name, argv):
        n = self.counts.get(name, 0)
        self.counts[name] = n + 1
        log = os.path.join(self.dir, "%s%s.log" % (name, "" if n == 0 else ".%d" % n))
        p = Proc(kind, name, argv, log, self.env)
        with self.lock:
            self.procs.append(p)
        return p

    # --- the backends ---------------------------------------------------
    def sim_argv(self, name, port, seed):
        faults = self.opts.faults_json(seed)
        return [os.path.join(self.bin, "comfyq-sim"), "--port", str(port),
                "--base-directory", os.path.join(self.dir, name),
                "--step-ms", str(self.opts.step_ms), "--model-load-ms", "20",
                "--faults", faults, "--fault-seed", str(seed)]

    def start_sim(self, name, seed, port=None):
        port = port or free_port()
        p = self.spawn("sim", name, self.sim_argv(name, port, seed))
        self.sims[name] = (p, port, seed)
        if not wait_for(lambda: socket.create_connection(("127.0.0.1", port), 0.5).close() or True, 20):
            raise RuntimeError("sim %s did not start" % name)
        return p

    def sim_url(self, name):
        return "http://127.0.0.1:%d" % self.sims[name][1]

    def worker_argv(self, wid, sim):
        return [os.path.join(self.bin, "comfyq-worker"),
                "--redis-url", self.redis.url, "--queue", QUEUE,
                "--comfyui-url", self.sim_url(sim), "--worker-id", wid,
                "--pool", "pool-" + sim, "--output-dir", self.out,
                "--workflows-dir", self.workflows,
                "--heartbeat-ms", "500", "--lease-ms", str(self.opts.lease_ms),
                "--health-interval-ms", "200", "--retry-base-ms", "100",
                "--retry-max-ms", "400", "--silence-timeout-s", "2",
                "--ws-ping-s", "2", "--ws-pong-timeout-s", "2",
                "--http-timeout-ms", "5000", "--output-timeout-ms", "10000",
                "--drain-grace-s", "8", "--block-timeout-s", "5",
                "--job-timeout-s", "60", "--worker-ttl-ms", "10000",
                "--output-fsync", "false"]

    def start_worker(self, sim):
        self.nworker += 1
        wid = "w%d-%s" % (self.nworker, sim)
        p = self.spawn("worker", wid, self.worker_argv(wid, sim))
        p.sim = sim
        self.workers[wid] = p
        return wid

    def start_janitor(self, i):
        argv = [os.path.join(self.bin, "comfyq-janitor"),
                "--redis-url", self.redis.url, "--queue", QUEUE,
                "--tick-ms", "200", "--events-max-len", "0",
                "--events-max-age-s", "0", "--grace-ms", "1000",
                "--worker-dead-ms", "5000", "--redis-timeout-ms", "3000"]
        return self.spawn("janitor", "janitor%d" % i, argv)

    def start_sched(self, name, port=None):
        port = port or free_port()
        argv = [os.path.join(self.bin, "comfyq-scheduler"),
                "--redis-url", self.redis.url, "--queue", QUEUE,
                "--listen", "127.0.0.1:%d" % port, "--output-dir", self.out,
                "--workflows-dir", self.workflows,
                "--webhook-secret", SECRET, "--webhook-allow-private", "true",
                "--webhook-retry-base-ms", "50", "--webhook-retry-max-ms", "1000",
                "--webhook-timeout-ms", "1500", "--webhook-lease-ms", "2500",
                "--webhook-concurrency", "32"]
        p = self.spawn("scheduler", name, argv)
        self.scheds[name] = (p, port)
        if not wait_for(lambda: "listening on" in open(p.log, errors="replace").read(), 30, 0.1):
            raise RuntimeError("scheduler %s did not start" % name)
        return p

    def sched_urls(self):
        return ["http://127.0.0.1:%d" % port for (_, port) in self.scheds.values()]

    def cli(self):
        return [os.path.join(self.bin, "comfyq"), "--redis", self.redis.url,
                "--queue", QUEUE]

    def init_library(self):
        r = subprocess.run(self.cli() + ["init"], capture_output=True, text=True,
                           env=self.env, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("comfyq init: " + r.stdout + r.stderr)

    # --- watching -------------------------------------------------------
    def restart_crashed_sims(self):
        """A sim that exited (its crash fault: status 70) is started again
        on its port, as a supervisor would; counted."""
        for name, (p, port, seed) in list(self.sims.items()):
            if not p.alive() and p.killed is None:
                p.exitcode = p.p.poll()
                p.expected = p.exitcode == 70
                self.sim_restarts += 1
                self.start_sim(name, seed + 1000 * self.sim_restarts, port)

    def unexpected(self):
        """Processes that ended without the harness ending them (a sim's
        crash fault excepted): [(Proc, exit status)]."""
        out = []
        for p in self.procs:
            code = p.p.poll()
            if code is None or p.killed is not None:
                continue
            if p.kind == "sim" and code == 70:
                continue
            out.append((p, code))
        return out

    def stop_all_programs(self):
        """Stops the comfyq programs (not Redis, not the sims' supervisor
        role): schedulers, workers, janitors, sims; their exit statuses."""
        codes = []
        for kind in ["scheduler", "worker", "janitor", "sim"]:
            live = [p for p in self.procs if p.kind == kind and p.alive()]
            for p in live:
                # one just started has its handlers once it has logged
                wait_for(lambda: os.path.getsize(p.log) > 0, 15, 0.1)
                p.signal(signal.SIGTERM)
            for p in live:
                codes.append((p, p.stop(30)))
        return codes

    def stop_all(self):
        """Stops everything, programs first, Redis last; the exit status of
        each program stopped here (SIGTERM: a clean exit is 0)."""
        order = ["scheduler", "worker", "janitor", "sim", "sentinel", "redis"]
        codes = []
        for kind in order:
            live = [p for p in self.procs if p.kind == kind and p.alive()]
            for p in live:
                p.signal(signal.SIGTERM)
            for p in live:
                c = p.stop(30)
                codes.append((p, c))
        for p in self.procs:
            try:
                p.fh.close()
            except Exception:
                pass
        return codes
