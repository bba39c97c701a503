#!/usr/bin/env python3
"""A chat bot's side of one paid picture, over comfyq-scheduler's HTTP API.

Submits a job for a user (tenant tg:<user>, the charge in meta, an
idempotency key, optionally a webhook), follows its progress on the job's
Server-Sent Events stream (parsed here by hand: id, event and data lines, a
blank line ends a frame, ':' lines are keep-alives), and when it ends:
on success downloads the picture (outputs[0].url) and prints where it is,
on failure prints the error code and that the charge comes back through the
refund stream (refunds.py credits it, once). Standard library only.

    bot_http.py --api http://127.0.0.1:8680 --token SECRET --user 42 \
        --charge 10 --out pics [--workflow sdxl_txt2img] [--param K=V ...] \
        [--key ORDER-ID] [--webhook URL]

Prints "job <id> <state>", "queued position <n>", "progress <step>/<max>",
then "saved <path>" (exit 0) or "failed <code>: <message>" (exit 1).
Exit 2: the API refused the job or could not be reached.
"""
import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid


def request(args, method, path, body=None, headers=None):
    h = {"Accept": "application/json"}
    if args.token:
        h["Authorization"] = "Bearer " + args.token
    if body is not None:
        h["Content-Type"] = "application/json"
        body = json.dumps(body).encode()
    h.update(headers or {})
    req = urllib.request.Request(args.api + path, data=body, method=method,
                                 headers=h)
    return urllib.request.urlopen(req, timeout=args.timeout)


def api_json(args, method, path, body=None, headers=None):
    with request(args, method, path, body, headers) as r:
        return r.status, json.load(r)


def param(kv):
    k, sep, v = kv.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("want K=V, got " + kv)
    try:
        return k, json.loads(v)  # numbers and booleans keep their type
    except ValueError:
        return k, v


def sse_frames(resp):
    """Yields (id, event, data) for each frame of a text/event-stream."""
    fid, event, data = None, "message", []
    for raw in resp:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line == "":
            if data:
                yield fid, event, "\n".join(data)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue  # keep-alive comment
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id":
            fid = value
        elif name == "event":
            event = value
        elif name == "data":
            data.append(value)


def follow(args, jid):
    """Prints the job's events until its terminal one; resumes with
    Last-Event-ID when the connection drops."""
    last = None
    while True:
        headers = {"Accept": "text/event-stream"}
        if last:
            headers["Last-Event-ID"] = last
        try:
            with request(args, "GET", "/v1/jobs/%s/events" % jid,
                         headers=headers) as r:
                if r.status == 204:
                    return  # it had ended at the id we gave
                for fid, event, data in sse_frames(r):
                    last = fid or last
                    ev = json.loads(data)
                    if event == "queue_status":
                        print("queued position %s" % ev["position"],
                              flush=True)
                    elif event == "progress":
                        print("progress %s/%s" % (ev["value"], ev["max"]),
                              flush=True)
                    elif event in ("started", "requeued", "retrying"):
                        print(event, flush=True)
                    elif event in ("succeeded", "failed", "canceled"):
                        return
        except urllib.error.HTTPError as e:
            if 400 <= e.code < 500 and e.code != 429:
                raise  # not found, not ours: retrying will not help
            print("events: %s; reconnecting" % e, file=sys.stderr)
            time.sleep(1)
        except (urllib.error.URLError, OSError) as e:
            print("events: %s; reconnecting" % e, file=sys.stderr)
            time.sleep(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--api", default=os.environ.get(
        "COMFYQ_API", "http://127.0.0.1:8680"))
    ap.add_argument("--token", default=os.environ.get("COMFYQ_TOKEN"))
    ap.add_argument("--user", required=True)
    ap.add_argument("--charge", type=int, default=10)
    ap.add_argument("--out", default=".")
    ap.add_argument("--workflow", default="sdxl_txt2img")
    ap.add_argument("--param", type=param, action="append", default=[])
    ap.add_argument("--key", help="idempotency key (default: a new one)")
    ap.add_argument("--webhook")
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    args.api = args.api.rstrip("/")

    spec = {"workflow": args.workflow, "params": dict(args.param),
            "tenant": "tg:" + args.user,
            "idempotency_key": args.key or "tg:%s:%s" % (args.user,
                                                         uuid.uuid4().hex),
            "meta": {"charge": args.charge, "user": args.user}}
    if args.webhook:
        spec["webhook"] = args.webhook
    try:
        _, job = api_json(args, "POST", "/v1/jobs", spec)
    except urllib.error.HTTPError as e:
        try:
            err = json.load(e).get("error", {})
        except ValueError:  # libevent's own 413 and 400 are HTML
            err = {"code": e.reason}
        print("refused %d %s: %s" % (e.code, err.get("code"),
                                     err.get("message")), file=sys.stderr)
        for f in err.get("fields", []):
            print("  %s: %s" % (f["field"], f["message"]), file=sys.stderr)
        return 2
    except urllib.error.URLError as e:
        print("cannot reach %s: %s" % (args.api, e.reason), file=sys.stderr)
        return 2
    jid = job["id"]
    print("job %s %s" % (jid, job["state"]), flush=True)

    follow(args, jid)
    _, job = api_json(args, "GET", "/v1/jobs/" + jid)
    if job["state"] != "succeeded":
        err = job.get("error") or {}
        print("failed %s: %s" % (err.get("code"), err.get("message")))
        if job.get("refund"):
            print("refund: the %d credits come back through the refund "
                  "stream" % args.charge)
        return 1
    os.makedirs(args.out, exist_ok=True)
    out = job["outputs"][0]
    ext = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp",
           "video/mp4": ".mp4"}.get(out.get("mime"), ".bin")
    path = os.path.join(args.out, jid + ext)
    with request(args, "GET", out["url"]) as r, \
            open(path + ".part", "wb") as f:
        while True:
            b = r.read(65536)
            if not b:
                break
            f.write(b)
    os.replace(path + ".part", path)
    print("saved " + path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
