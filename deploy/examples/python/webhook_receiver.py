#!/usr/bin/env python3
"""A webhook receiver for comfyq-scheduler's job events, after the
Standard Webhooks convention: it checks webhook-signature (v1,<base64
HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>">, keyed with the
base64-decoded part of a whsec_ secret, or the secret's own bytes), refuses
a bad or missing signature and a timestamp more than --tolerance-s away
from now (401), and takes each webhook-id once: the scheduler delivers at
least once, so a repeat is answered 200 and not stored again.

Each accepted event is written to <dir>/<webhook-id>.json (the file's
existence is the dedupe record, so it holds across restarts; written to a
temporary name and linked into place, so a reader never sees half of one
and two deliveries of one id racing store it once).
Standard library only.

    webhook_receiver.py --secret whsec_... [--listen 127.0.0.1] \
        [--port 8700] [--port-file FILE] [--dir hooks] [--tolerance-s 300]

Prints "accepted <webhook-id> <type> <job>", "duplicate <webhook-id>",
"rejected: <why>".
"""
import argparse
import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import sys
import threading
import time

ID_OK = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def signing_key(secret):
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_"):])
    return secret.encode()


def verify(key, tolerance, headers, body):
    """None when the request is signed and fresh, else why not."""
    wid = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sigs = headers.get("webhook-signature")
    if not wid or not ts or not sigs:
        return "missing webhook headers"
    try:
        t = int(ts)
    except ValueError:
        return "bad timestamp"
    if abs(time.time() - t) > tolerance:
        return "timestamp too old or too new"
    mac = hmac.new(key, ("%s.%s." % (wid, ts)).encode() + body,
                   hashlib.sha256).digest()
    want = "v1," + base64.b64encode(mac).decode()
    # Several signatures, space-separated, during a key rotation.
    if not any(hmac.compare_digest(want, s) for s in sigs.split()):
        return "bad signature"
    if not ID_OK.match(wid):
        return "bad webhook-id"
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, code, text):
        b = (text + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def do_POST(self):
        cfg = self.server.cfg
        n = int(self.headers.get("Content-Length") or 0)
        if n > 1 << 20:
            return self.answer(413, "too large")
        body = self.rfile.read(n)
        why = verify(cfg.key, cfg.tolerance_s, self.headers, body)
        if why:
            print("rejected: " + why, flush=True)
            return self.answer(401, why)
        wid = self.headers["webhook-id"]
        path = os.path.join(cfg.dir, wid + ".json")
        ev = json.loads(body)
        # Write aside, then link into place: the link fails when the id
        # was taken already, also by a delivery racing this one.
        tmp = "%s.%d.tmp" % (path, threading.get_ident())
        with open(tmp, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            print("duplicate " + wid, flush=True)
            return self.answer(200, "duplicate")
        finally:
            os.unlink(tmp)
        print("accepted %s %s %s" % (wid, ev.get("type"), ev.get("job")),
              flush=True)
        # Here a bot would tell the user; the refund is refunds.py's.
        self.answer(200, "ok")

    def log_message(self, *a):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--secret", default=os.environ.get(
        "COMFYQ_WEBHOOK_SECRET"))
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8700)
    ap.add_argument("--port-file")
    ap.add_argument("--dir", default="hooks")
    ap.add_argument("--tolerance-s", type=int, default=300)
    cfg = ap.parse_args()
    if not cfg.secret:
        ap.error("--secret (or COMFYQ_WEBHOOK_SECRET) is required")
    cfg.key = signing_key(cfg.secret)
    os.makedirs(cfg.dir, exist_ok=True)
    srv = http.server.ThreadingHTTPServer((cfg.listen, cfg.port), Handler)
    srv.cfg = cfg
    port = srv.server_address[1]
    if cfg.port_file:
        with open(cfg.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.replace(cfg.port_file + ".tmp", cfg.port_file)
    print("listening on %s:%d" % (cfg.listen, port), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
