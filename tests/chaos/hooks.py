"""Webhook receivers: HTTP servers on loopback that check every request's
Standard Webhooks signature (README, Webhooks; scheduler/sched_sign.c:
HMAC-SHA256 keyed with the whsec_ secret's decoded bytes over
"<webhook-id>.<webhook-timestamp>.<body>", sent as "v1,<base64>") and
fail now and then: a 500, a 503, or an answer held past the scheduler's
webhook-timeout-ms. Each request is one JSON line in the receiver's log."""
import base64
import hashlib
import hmac
import http.server
import json
import os
import random
import threading
import time


def verify(secret, headers, body):
    """(ok, why) for one request."""
    key = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
    mid = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sigs = headers.get("webhook-signature")
    if not mid or not ts or not sigs:
        return False, "missing webhook headers"
    try:
        if abs(time.time() - int(ts)) > 300:
            return False, "timestamp %s too far from now" % ts
    except ValueError:
        return False, "bad timestamp"
    mac = hmac.new(key, ("%s.%s." % (mid, ts)).encode() + body, hashlib.sha256).digest()
    want = "v1," + base64.b64encode(mac).decode()
    if any(hmac.compare_digest(want, s) for s in sigs.split()):
        return True, ""
    return False, "signature mismatch"


class Receiver:
    def __init__(self, name, secret, rundir, seed, fail_p=0.08, slow_p=0.02,
                 slow_s=2.0):
        self.name, self.secret = name, secret
        self.rng = random.Random(seed)
        self.fail_p, self.slow_p, self.slow_s = fail_p, slow_p, slow_s
        self.log = os.path.join(rundir, name + ".jsonl")
        self.fh = open(self.log, "a")
        self.lock = threading.Lock()
        me = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                me.handle(self, body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d/hook/%s" % (self.port, name)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, h, body):
        hd = {k.lower(): v for k, v in h.headers.items()}
        ok, why = verify(self.secret, hd, body)
        with self.lock:
            x = self.rng.random()
        status, slow = 200, False
        if x < self.fail_p:
            status = 500 if x < self.fail_p / 2 else 503
        elif x < self.fail_p + self.slow_p:
            slow = True
        rec = {"t": time.time(), "id": hd.get("webhook-id"),
               "ts": hd.get("webhook-timestamp"), "sig_ok": ok, "why": why,
               "status": status, "slow": slow}
        try:
            b = json.loads(body)
            for k in ("job", "type", "state", "end_id", "refund", "error_code"):
                if k in b:
                    rec[k] = b[k]
            rec["has_error"] = "error_code" in b or "error" in b
        except ValueError:
            rec["bad_json"] = True
        if slow:
            time.sleep(self.slow_s)
        with self.lock:
            self.fh.write(json.dumps(rec) + "\n")
            self.fh.flush()
        out = b"{}"
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(out)))
            h.end_headers()
            h.wfile.write(out)
        except OSError:
            pass

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.fh.close()


def read_logs(paths):
    out = []
    for p in paths:
        with open(p) as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
    return out
