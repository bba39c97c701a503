#!/usr/bin/env python3
"""Submitting on the Redis path, without comfyq-scheduler: the producer
contract of README (FCALL comfyq_enqueue, the events stream, the job
record), for a backend that already talks to the queue's Redis.

Notes the events stream's last id, calls comfyq_enqueue with the spec
(tenant tg:<user>, the charge in meta, an idempotency key), then follows
the stream from that id with XREAD BLOCK, keeping the entries of its job,
until the terminal one; when a read times out it looks at the job record,
which keeps the outcome when the stream no longer has it (a replay of an
idempotency key whose job ended long ago).

    submit_redis.py --redis redis://127.0.0.1:6379 --queue default \
        --user 42 --charge 10 [--workflow sdxl_txt2img] [--param K=V ...] \
        [--key ORDER-ID]

Prints "job <id> <created|existing> <state>", "progress <step>/<max>",
then "succeeded <outputs JSON>" (exit 0) or "failed <code>: <error>"
(exit 1). Exit 2: the spec was refused; 3: Redis unreachable.
"""
import argparse
import json
import os
import sys
import uuid

import redis

TERMINAL = ("succeeded", "failed", "canceled")


def param(kv):
    k, sep, v = kv.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("want K=V, got " + kv)
    try:
        return k, json.loads(v)
    except ValueError:
        return k, v


def outcome(rec):
    if rec["state"] == "succeeded":
        print("succeeded " + rec.get("outputs", "[]"))
        return 0
    print("failed %s: %s" % (rec.get("error_code"), rec.get("error")))
    if rec.get("refund") in ("true", "1"):
        print("refund: the charge comes back through the refund stream")
    return 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--redis", default=os.environ.get(
        "COMFYQ_REDIS_URL", "redis://127.0.0.1:6379"))
    ap.add_argument("--queue", default=os.environ.get("COMFYQ_QUEUE",
                                                      "default"))
    ap.add_argument("--user", required=True)
    ap.add_argument("--charge", type=int, default=10)
    ap.add_argument("--workflow", default="sdxl_txt2img")
    ap.add_argument("--param", type=param, action="append", default=[])
    ap.add_argument("--key")
    a = ap.parse_args()
    prefix = "cq:{%s}:" % a.queue
    spec = {"workflow": a.workflow, "params": dict(a.param),
            "tenant": "tg:" + a.user,
            "idempotency_key": a.key or "tg:%s:%s" % (a.user,
                                                      uuid.uuid4().hex),
            "meta": {"charge": a.charge, "user": a.user}}
    r = redis.Redis.from_url(a.redis, decode_responses=True)
    try:
        last = r.xrevrange(prefix + "events", count=1)
        last = last[0][0] if last else "0-0"
        jid, how, state = r.execute_command(
            "FCALL", "comfyq_enqueue", 1, prefix, json.dumps(spec))
    except redis.ConnectionError as e:
        print("redis: %s" % e, file=sys.stderr)
        return 3
    except redis.ResponseError as e:
        # INVALID spec.<field>: <rule>, CONFLICT ...: the first word is
        # the code.
        print("refused: %s" % e, file=sys.stderr)
        return 2
    print("job %s %s %s" % (jid, how, state), flush=True)
    while True:
        reply = r.xread({prefix + "events": last}, count=100, block=5000)
        if not reply:
            rec = r.hgetall(prefix + "job:" + jid)
            if rec.get("state") in TERMINAL:
                return outcome(rec)
            continue
        for eid, ev in reply[0][1]:
            last = eid
            if ev.get("job") != jid:
                continue
            if ev["type"] == "progress":
                print("progress %s/%s" % (ev["value"], ev["max"]),
                      flush=True)
            elif ev["type"] in TERMINAL:
                return outcome(ev)


if __name__ == "__main__":
    sys.exit(main())
