"""The submission mix. Every job is a spec built from a seeded RNG
(templates, priorities, tenants, meta with the job's number n and a
charge, a webhook URL on one of the receivers), about 6 % of submissions
repeat an earlier job's spec and idempotency key (through any path), and
each goes through one path: the scheduler's HTTP API (half), FCALL
comfyq_enqueue from this client, or the comfyq CLI. Some jobs are
canceled while queued, some while running (after their started state is
seen), through the API, FCALL comfyq_cancel or the CLI.

Every job record carries meta.n, so the checks find every job a
submission made by scanning job:* (an acknowledgement lost with a
connection does not hide a job). Jobs without an idempotency key (10 %)
are not resubmitted after a lost connection (that could make two jobs);
keyed ones are, as a producer must."""
import base64
import http.client
import json
import os
import random
import struct
import subprocess
import threading
import time
import zlib

import resp
from procs import PREFIX


def tiny_png(w=48, h=48):
    # a gradient, RGB
    raw = b"".join(b"\0" + b"".join(bytes((x * 5 % 256, y * 5 % 256, 128)) for x in range(w))
                   for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


IMG = base64.b64encode(tiny_png()).decode()
TEMPLATES = ["sdxl_txt2img"] * 6 + ["smoke_invert"] * 2 + ["sdxl_img2img"] * 2 + ["svd_img2vid"]


def make_spec(rng, n, hooks):
    t = rng.choice(TEMPLATES)
    if t == "sdxl_txt2img":
        params = {"prompt": "chaos fox %d" % n, "seed": rng.randrange(1 << 30),
                  "steps": rng.randint(2, 8), "width": 512, "height": 512}
        inputs = None
    elif t == "smoke_invert":
        params = {"width": 64, "height": 64, "color": rng.randint(0, 255)}
        inputs = None
    elif t == "sdxl_img2img":
        params = {"prompt": "chaos redraw %d" % n, "steps": rng.randint(2, 6),
                  "width": 512, "height": 512, "denoise": 0.5}
        inputs = {"image": IMG}
    else:
        params = {"duration": 1, "fps": 4, "aspect": "1:1"}
        inputs = {"image": IMG}
    spec = {"workflow": t, "params": params}
    if inputs:
        spec["inputs"] = inputs
    spec["tenant"] = "tg:%d" % rng.randint(1, 12)
    spec["priority"] = rng.choice(["high", "normal", "normal", "normal", "low"])
    if rng.random() < 0.9:
        spec["idempotency_key"] = "chaos-%d-%d" % (n, rng.randrange(1 << 20))
    spec["timeout_s"] = rng.choice([8, 10])
    spec["max_attempts"] = rng.choice([1, 2, 3, 3])
    spec["meta"] = {"charge": rng.randint(1, 20), "n": n}
    spec["webhook"] = rng.choice(hooks).url
    return spec


def cli_args(spec, imgfile):
    a = ["submit", "--workflow", spec["workflow"]]
    for k, v in spec["params"].items():
        a += ["--param", "%s=%s" % (k, json.dumps(v) if not isinstance(v, str) else v)]
    for k, v in (spec.get("inputs") or {}).items():
        assert v == IMG
        a += ["--input", "%s=%s" % (k, imgfile)]
    a += ["--tenant", spec["tenant"], "--priority", spec["priority"]]
    if "idempotency_key" in spec:
        a += ["--idempotency-key", spec["idempotency_key"]]
    a += ["--timeout", str(spec["timeout_s"]), "--max-attempts", str(spec["max_attempts"])]
    for k, v in spec["meta"].items():
        a += ["--meta", "%s=%s" % (k, v)]
    a += ["--webhook", spec["webhook"], "--json"]
    return a


class NotRun(Exception):
    """Redis refused the call before running it (a replica, a master
    without good replicas, a server loading): safe to send again."""


NOT_RUN = ("NOREPLICAS", "READONLY", "MASTERDOWN", "LOADING", "TRYAGAIN")


class Sub:
    """One submission: n (the job's number), spec, path, and what came back."""

    def __init__(self, n, spec, path, repeat_of=None):
        self.n, self.spec, self.path, self.repeat_of = n, spec, path, repeat_of
        self.jid = None
        self.result = None      # created | existing | unknown | error text
        self.tries = 0
        self.t = None
        self.cancel = None      # None | queued | running
        self.cancel_reply = None
        self.cancel_path = None


class Submitter:
    def __init__(self, stack, hooks, opts, log):
        self.stack, self.hooks, self.opts, self.log = stack, hooks, opts, log
        self.rng = random.Random(opts.seed * 7919 + 1)
        self.subs = []
        self.lock = threading.Lock()
        self.local = threading.local()   # one connection a thread
        self.running_cancels = []
        self.errors = []
        self.stop = False
        self.imgfile = os.path.join(stack.dir, "input.png")
        with open(self.imgfile, "wb") as f:
            f.write(base64.b64decode(IMG))

    # --- paths ------------------------------------------------------------
    def redis(self):
        if getattr(self.local, "r", None) is None:
            self.local.r = self.stack.redis.client(10)
        return self.local.r

    def fcall(self, *args):
        """FCALL through this client; one reconnect; ConnectionError, or
        NotRun for a refusal (the connection is dropped: the next one goes
        to the master the sentinels name then)."""
        for i in range(2):
            try:
                r = self.redis().call(*args)
                if isinstance(r, resp.RespError) and r.startswith(NOT_RUN):
                    self.local.r.close()
                    self.local.r = None
                    raise NotRun(str(r))
                return r
            except ConnectionError:
                self.local.r = None
                if i == 1:
                    raise
                time.sleep(0.2)

    def via_fcall(self, s):
        r = self.fcall("FCALL", "comfyq_enqueue", "1", PREFIX, json.dumps(s.spec))
        if isinstance(r, resp.RespError):
            return None, str(r)
        return r[0], r[1]

    def http(self, method, path, body=None):
        url = self.rng.choice(self.stack.sched_urls())
        host, port = url[7:].split(":")
        c = http.client.HTTPConnection(host, int(port), timeout=15)
        try:
            c.request(method, path, body=body,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def via_api(self, s):
        st, b = self.http("POST", "/v1/jobs", json.dumps(s.spec))
        if st in (200, 201):
            j = json.loads(b)
            return j["id"], "created" if st == 201 else "existing"
        if st == 503:
            raise ConnectionError("503 " + b[:200].decode(errors="replace"))
        return None, "%d %s" % (st, b[:300].decode(errors="replace"))

    def via_cli(self, s):
        r = subprocess.run(self.stack.cli() + cli_args(s.spec, self.imgfile), capture_output=True,
                           text=True, env=self.stack.env, timeout=120)
        if r.returncode == 0:
            j = json.loads(r.stdout)
            return j["job"], j["result"]
        if r.returncode == 3:
            raise ConnectionError("cli exit 3: " + r.stderr.strip()[:200])
        return None, "cli exit %d: %s" % (r.returncode, r.stderr.strip()[:300])

    def submit_one(self, s):
        fn = {"api": self.via_api, "fcall": self.via_fcall, "cli": self.via_cli}[s.path]
        keyed = "idempotency_key" in s.spec
        s.t = time.time()
        while True:
            s.tries += 1
            try:
                jid, res = fn(s)
                s.jid, s.result = jid, res
                return
            except NotRun as e:
                if s.tries > 200:
                    s.result = "unknown (%s)" % e
                    return
                time.sleep(0.25)
            except (ConnectionError, OSError, http.client.HTTPException) as e:
                if not keyed or s.tries > 200 or self.stop:
                    s.result = "unknown (%s)" % e
                    return
                time.sleep(0.25)

    # --- cancels --------------------------------------------------------------
    def cancel(self, s, kind):
        path = self.rng.choice(["api", "fcall", "cli"])
        s.cancel, s.cancel_path = kind, path
        for i in range(100):
            try:
                if path == "api":
                    st, b = self.http("DELETE", "/v1/jobs/" + s.jid)
                    if st == 503:
                        raise ConnectionError("503")
                    s.cancel_reply = "%d %s" % (st, b.decode(errors="replace")[:120])
                elif path == "fcall":
                    r = self.fcall("FCALL", "comfyq_cancel", "1", PREFIX, s.jid, "chaos")
                    s.cancel_reply = str(r)
                else:
                    r = subprocess.run(self.stack.cli() + ["cancel", s.jid, "--json"],
                                       capture_output=True, text=True,
                                       env=self.stack.env, timeout=120)
                    if r.returncode == 3:
                        raise ConnectionError("cli 3")
                    s.cancel_reply = "%d %s" % (r.returncode, (r.stdout + r.stderr).strip()[:120])
                return
            except (ConnectionError, NotRun, OSError, http.client.HTTPException):
                time.sleep(0.25)
        s.cancel_reply = "gave up"

    def watch_running_cancels(self):
        """Cancels each chosen job once it is seen active (or gives up
        after 30 s: it ended first)."""
        r = None
        while not (self.stop and not self.running_cancels):
            with self.lock:
                pend = list(self.running_cancels)
            for s, t0 in pend:
                try:
                    if r is None:
                        r = self.stack.redis.client(5)
                    st = r.call("HGET", PREFIX + "job:" + s.jid, "state")
                except ConnectionError:
                    r = None
                    continue
                if st == "active" or time.time() - t0 > 30 or st in ("succeeded", "failed", "canceled"):
                    with self.lock:
                        self.running_cancels.remove((s, t0))
                    if st == "active":
                        self.cancel(s, "running")
            time.sleep(0.05)

    # --- the run --------------------------------------------------------
    def plan(self):
        """The whole list of submissions, seeded."""
        rng = self.rng
        out, firsts = [], []
        n = 0
        while len(out) < self.opts.jobs:
            path = "api" if rng.random() < 0.5 else ("fcall" if rng.random() < 0.7 else "cli")
            if firsts and rng.random() < 0.06:
                f = rng.choice(firsts)
                out.append(Sub(f.n, f.spec, path, repeat_of=f))
                continue
            n += 1
            s = Sub(n, make_spec(rng, n, self.hooks), path)
            if "idempotency_key" in s.spec:
                firsts.append(s)
            x = rng.random()
            if x < 0.04:
                s.cancel = "queued"
            elif x < 0.08:
                s.cancel = "running"
            out.append(s)
        return out

    def run(self, plan, on_tick=None):
        """Submits the plan at opts.rate a second, from 3 threads."""
        watcher = threading.Thread(target=self.watch_running_cancels, daemon=True)
        watcher.start()
        q = list(plan)
        idx = [0]
        t0 = time.time()

        def worker():
            while True:
                with self.lock:
                    i = idx[0]
                    if i >= len(q):
                        return
                    idx[0] += 1
                due = t0 + i / self.opts.rate
                if due > time.time():
                    time.sleep(due - time.time())
                s = q[i]
                if s.repeat_of is not None:
                    # a repeat goes once the first was answered
                    while s.repeat_of.result is None:
                        time.sleep(0.02)
                self.submit_one(s)
                with self.lock:
                    self.subs.append(s)
                if s.jid and s.repeat_of is None:
                    want, s.cancel = s.cancel, None
                    if want == "queued":
                        self.cancel(s, "queued")
                    elif want == "running":
                        with self.lock:
                            self.running_cancels.append((s, time.time()))
        ts = [threading.Thread(target=worker, daemon=True) for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.stop = True
        watcher.join(60)
