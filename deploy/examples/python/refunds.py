#!/usr/bin/env python3
"""The refund consumer of a bot's billing: every job that ends failed or
canceled has one entry in the queue's refunds stream; this gives the
user's credits back exactly once per job.

It reads the stream with a consumer group created at id 0 (every entry
since the stream began; MKSTREAM, an existing group is fine), after a
start first re-reads its own pending entries (delivered, never
acknowledged: it died before XACK), then new ones ('>'), and from time to
time takes over with XAUTOCLAIM the entries another consumer has held
longer than --claim-idle-ms (a consumer that died). Each entry is credited,
then acknowledged; an entry delivered again is acknowledged without a
second credit.

Exactly once rests on the ledger, not on the stream: the credit and the
record that the job was refunded are one atomic step keyed by the job id.
Here the ledger is two Redis keys of this example's own, written by one
EVAL: <ledger>refunded (a SET of job ids) and <ledger>credits (a HASH,
tenant -> credits given back). In a real bot it is your database: one
transaction that inserts the job id into a table with a unique key and
adds the credits.

    refunds.py --redis redis://127.0.0.1:6379 --queue default \
        --group billing --consumer bill-1 [--ledger billing:] \
        [--claim-idle-ms 60000] [--block-ms 5000] [--drain]

Prints "credited <job> <tenant> +<n> (<error_code>)", "already credited
<job>", "claimed <n> from a dead consumer". --drain: exit 0 once no entry
is pending or new (for tests and cron). --crash-after read|credit: for
tests, exit at once (status 4, no XACK) after reading entries or after
crediting the first one, as a crash there would.
"""
import argparse
import json
import os
import sys
import time

import redis

# KEYS: refunded set, credits hash; ARGV: job, tenant, credits.
# 1: credited now; 0: that job was credited before.
CREDIT = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[2], ARGV[3])
return 1
"""


class Consumer:
    def __init__(self, args):
        self.a = args
        self.r = redis.Redis.from_url(args.redis, decode_responses=True)
        self.stream = "cq:{%s}:refunds" % args.queue
        self.credit = self.r.register_script(CREDIT)

    def create_group(self):
        try:
            self.r.xgroup_create(self.stream, self.a.group, id="0",
                                 mkstream=True)
        except redis.ResponseError as e:
            if not str(e).startswith("BUSYGROUP"):
                raise

    def handle(self, entries):
        """Credits then acknowledges each (id, fields) entry."""
        if entries and self.a.crash_after == "read":
            os._exit(4)
        for eid, f in entries:
            if f:  # None: the entry was deleted while pending
                meta = json.loads(f.get("meta") or "{}")
                n = int(meta.get("charge", 0))
                led = self.a.ledger
                if self.credit(keys=[led + "refunded", led + "credits"],
                               args=[f["job"], f["tenant"], n]):
                    print("credited %s %s +%d (%s)" % (f["job"], f["tenant"],
                          n, f["error_code"]), flush=True)
                else:
                    print("already credited %s" % f["job"], flush=True)
                if self.a.crash_after == "credit":
                    os._exit(4)
            self.r.xack(self.stream, self.a.group, eid)

    def read(self, start, block=None):
        reply = self.r.xreadgroup(self.a.group, self.a.consumer,
                                  {self.stream: start}, count=10,
                                  block=block)
        return reply[0][1] if reply else []

    def pending(self):
        """Own pending entries, from 0 on, until none is left."""
        last = "0"
        while True:
            entries = self.read(last)
            if not entries:
                return
            self.handle(entries)
            last = entries[-1][0]

    def claim(self):
        """Entries idle past --claim-idle-ms, from any consumer."""
        cursor, n = "0-0", 0
        while True:
            cursor, entries = self.r.xautoclaim(
                self.stream, self.a.group, self.a.consumer,
                self.a.claim_idle_ms, start_id=cursor, count=10)[:2]
            n += len(entries)
            self.handle(entries)
            if cursor == "0-0":
                break
        if n:
            print("claimed %d from a dead consumer" % n, flush=True)
        return n

    def run(self):
        self.create_group()
        self.pending()
        next_claim = 0
        while True:
            claimed = 0
            if time.monotonic() >= next_claim:
                claimed = self.claim()
                next_claim = time.monotonic() + self.a.claim_idle_ms / 2000
            entries = self.read(">", self.a.block_ms)
            self.handle(entries)
            if self.a.drain and not entries and not claimed:
                return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--redis", default=os.environ.get(
        "COMFYQ_REDIS_URL", "redis://127.0.0.1:6379"))
    ap.add_argument("--queue", default=os.environ.get("COMFYQ_QUEUE",
                                                      "default"))
    ap.add_argument("--group", default="billing")
    ap.add_argument("--consumer", required=True)
    ap.add_argument("--ledger", default="billing:")
    ap.add_argument("--claim-idle-ms", type=int, default=60000)
    ap.add_argument("--block-ms", type=int, default=5000)
    ap.add_argument("--drain", action="store_true")
    ap.add_argument("--crash-after", choices=["read", "credit"])
    args = ap.parse_args()
    try:
        return Consumer(args).run()
    except redis.ConnectionError as e:
        print("redis: %s" % e, file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
