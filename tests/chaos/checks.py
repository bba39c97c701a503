"""The invariants of issue 15, checked from Redis (job records, the events
and refunds streams, slots, leases), the output files, the webhook
receivers' logs and the processes' logs; and the summary table."""
import collections
import json
import os
import re
import struct
import urllib.request
import zlib

import hooks
from procs import PREFIX

TERMINAL = ("succeeded", "failed", "canceled")
SANITIZER = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|"
                       r"runtime error:|SUMMARY: (Address|Undefined|Leak)Sanitizer|"
                       r"WARNING: ThreadSanitizer")


def stream(r, key):
    """Every entry of a stream: [(id, {field: value})]."""
    out, start = [], "-"
    while True:
        part = r.call("XRANGE", PREFIX + key, start, "+", "COUNT", "10000")
        if not part:
            return out
        for eid, flat in part:
            out.append((eid, dict(zip(flat[::2], flat[1::2]))))
        last = part[-1][0]
        ms, seq = last.split("-")
        start = "%s-%d" % (ms, int(seq) + 1)
        if len(part) < 10000:
            return out


def records(r):
    """Every job record: {jid: {field: value}}."""
    keys, cur = [], "0"
    while True:
        cur, part = r.call("SCAN", cur, "MATCH", PREFIX + "job:*", "COUNT", "1000")
        keys += part
        if cur == "0":
            break
    out = {}
    for i in range(0, len(keys), 200):
        chunk = keys[i:i + 200]
        reps = r.pipeline([["HGETALL", k] for k in chunk])
        for k, v in zip(chunk, reps):
            if isinstance(v, list):
                out[k[len(PREFIX) + 4:]] = dict(zip(v[::2], v[1::2]))
    return out


def png_ok(path, want_w, want_h):
    """Decodes a PNG fully (stdlib zlib: the IDAT stream inflates to the
    size its header says); '' or why not."""
    with open(path, "rb") as f:
        b = f.read()
    if b[:8] != b"\x89PNG\r\n\x1a\n":
        return "not a PNG"
    i, idat, w = 8, [], None
    while i < len(b):
        n, t = struct.unpack(">I4s", b[i:i + 8])
        d = b[i + 8:i + 8 + n]
        crc = struct.unpack(">I", b[i + 8 + n:i + 12 + n])[0]
        if zlib.crc32(t + d) & 0xffffffff != crc:
            return "bad CRC in " + t.decode(errors="replace")
        if t == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", d[:10])
        elif t == b"IDAT":
            idat.append(d)
        elif t == b"IEND":
            break
        i += 12 + n
    if w is None:
        return "no IHDR"
    chans = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(ctype, 0)
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as e:
        return "IDAT does not inflate: %s" % e
    want = h * (1 + (w * chans * depth + 7) // 8)
    if len(raw) != want:
        return "IDAT inflates to %d bytes, want %d" % (len(raw), want)
    if want_w and (int(want_w), int(want_h)) != (w, h):
        return "%dx%d, the record says %sx%s" % (w, h, want_w, want_h)
    return ""


def output_ok(o):
    p = o.get("path")
    if not p or not os.path.exists(p):
        return "missing file %s" % p
    size = os.path.getsize(p)
    if o.get("bytes") is not None and int(o["bytes"]) != size:
        return "%s: %d bytes, the record says %s" % (p, size, o["bytes"])
    mime = o.get("mime", "")
    if mime == "image/png":
        why = png_ok(p, o.get("width"), o.get("height"))
        return "%s: %s" % (p, why) if why else ""
    with open(p, "rb") as f:
        head = f.read(16)
    if mime == "video/mp4" and head[4:8] != b"ftyp":
        return "%s: no ftyp box" % p
    if mime == "image/webp" and (head[:4] != b"RIFF" or head[8:12] != b"WEBP"):
        return "%s: not RIFF WEBP" % p
    if size == 0:
        return "%s: empty" % p
    return ""


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


class Report:
    def __init__(self):
        self.violations = collections.OrderedDict()   # kind -> [job ids / text]
        self.notes = []      # what a restart lost and what the system did

    def bad(self, kind, what):
        self.violations.setdefault(kind, []).append(what)


def check(r, subs, stack, receivers, kills, restarts, loss_ok, stop_codes):
    """All checks; returns (Report, summary lines)."""
    rep = Report()
    recs = records(r)
    events = stream(r, "events")
    refunds = stream(r, "refunds")

    # --- one job per logical submission (meta.n) --------------------------
    by_n = collections.defaultdict(list)
    for jid, h in recs.items():
        try:
            n = json.loads(h.get("meta", "{}")).get("n")
        except ValueError:
            n = None
        by_n[n].append(jid)
    firsts = {}
    for s in subs:
        if s.repeat_of is None:
            firsts[s.n] = s
    acked = {}
    for s in subs:
        if s.jid:
            acked.setdefault(s.n, set()).add(s.jid)
    lost_acked = []
    for n, s in firsts.items():
        have = by_n.get(n, [])
        if len(have) > 1:
            rep.bad("more than one job for one submission", "n=%d: %s" % (n, " ".join(have)))
        if not have and s.jid:
            lost_acked.append(s.jid)
        if not have and not s.jid and "unknown" not in (s.result or ""):
            pass  # refused: reported below
    if lost_acked:
        if loss_ok:
            rep.notes.append("%d acknowledged enqueues were lost with the restart "
                             "(their jobs are not in Redis): %s" %
                             (len(lost_acked), " ".join(lost_acked[:20])))
        else:
            rep.bad("acknowledged job missing from Redis", " ".join(lost_acked))
    for s in subs:
        if s.jid is None and "unknown" not in (s.result or ""):
            rep.bad("submission refused", "n=%d via %s: %s" % (s.n, s.path, s.result))
        if s.repeat_of is not None and s.jid and s.repeat_of.jid:
            if s.jid != s.repeat_of.jid or s.result != "existing":
                rep.bad("repeated idempotency key made another job",
                        "%s then %s (%s via %s)" % (s.repeat_of.jid, s.jid, s.result, s.path))
    # the spec stored is the spec sent (every path)
    for n, s in firsts.items():
        for jid in by_n.get(n, []):
            try:
                stored = json.loads(recs[jid].get("spec", "null"))
            except ValueError:
                stored = None
            if stored != s.spec:
                extra = sorted(set(stored or {}) ^ set(s.spec)) if isinstance(stored, dict) else "?"
                rep.bad("stored spec differs from the one sent",
                        "%s (via %s; keys differing: %s)" % (jid, s.path, extra))
    unknown_n = [s.n for s in firsts.values() if s.jid is None]

    # --- endings ----------------------------------------------------------
    ends = collections.defaultdict(list)
    for eid, e in events:
        if e.get("type") in TERMINAL:
            ends[e.get("job")].append((eid, e))
    refund_by = collections.Counter(e.get("job") for _, e in refunds)
    states = collections.Counter()
    codes = collections.Counter()
    for jid, h in recs.items():
        st = h.get("state")
        states[st] += 1
        codes[(st, h.get("error_code", "") if st != "succeeded" else "")] += 1
        if st not in TERMINAL:
            rep.bad("job not terminal", "%s (%s)" % (jid, st))
            continue
        e = ends.get(jid, [])
        if len(e) != 1:
            rep.bad("terminal events != 1", "%s: %d (%s)" %
                    (jid, len(e), ",".join(x[1]["type"] for x in e)))
        elif e[0][0] != h.get("end_id") or e[0][1]["type"] != st:
            rep.bad("terminal event differs from the record", "%s: %s %s vs %s %s" %
                    (jid, e[0][0], e[0][1]["type"], h.get("end_id"), st))
        nref = refund_by.get(jid, 0)
        if st == "succeeded":
            if nref:
                rep.bad("succeeded and refunded", jid)
            if h.get("refund") != "false":
                rep.bad("succeeded with refund flag", jid)
            if "error_code" in h or "error" in h:
                rep.bad("succeeded record keeps an error", "%s (%s)" % (jid, h.get("error_code")))
            try:
                outs = json.loads(h.get("outputs", "[]"))
            except ValueError:
                outs = None
            if not outs:
                rep.bad("succeeded without outputs", jid)
            for o in outs or []:
                why = output_ok(o)
                if why:
                    rep.bad("output missing or not decodable", "%s: %s" % (jid, why))
        else:
            if nref != 1:
                rep.bad("refund entries != 1 for a failed or canceled job", "%s: %d" % (jid, nref))
            if h.get("refund") != "true":
                rep.bad("failed/canceled without refund flag", jid)
        if h.get("lease_until"):
            rep.bad("lease left on a job", jid)
    for jid in refund_by:
        if jid not in recs:
            rep.bad("refund for a job that is not there", jid)
    nfail = sum(1 for h in recs.values() if h.get("state") in ("failed", "canceled"))
    if len(refunds) != nfail:
        rep.bad("refund entries != failed + canceled", "%d entries, %d jobs" % (len(refunds), nfail))
    for jid in ends:
        if jid not in recs:
            rep.bad("terminal event of a job that is not there", jid)

    # --- slots and leases -------------------------------------------------
    for pool in r.call("SMEMBERS", PREFIX + "pools") or []:
        held = r.call("HGETALL", PREFIX + "held:" + pool) or []
        if held:
            rep.bad("slot held at the end", "%s: %s" % (pool, held[::2]))
    nl = r.call("ZCARD", PREFIX + "leases")
    if nl:
        rep.bad("lease left", " ".join(r.call("ZRANGE", PREFIX + "leases", "0", "-1")))
    for key in ("webhooks", "delayed"):
        n = r.call("ZCARD", PREFIX + key)
        if n:
            rep.bad("%s not empty at the end" % key, " ".join(r.call("ZRANGE", PREFIX + key, "0", "20")))

    # --- the backends: nothing left running or pending on any sim -------
    for name in sorted(stack.sims):
        try:
            q = json.loads(urllib.request.urlopen(stack.sim_url(name) + "/queue", timeout=10).read())
            left = [x[1] for x in q.get("queue_running", []) + q.get("queue_pending", [])]
        except Exception as e:
            left = ["(GET /queue: %s)" % e]
        if left:
            rep.bad("prompt left on a backend at the end", "%s: %s" % (name, " ".join(left)))

    # --- webhooks ---------------------------------------------------------
    hl = hooks.read_logs([x.log for x in receivers])
    got = collections.defaultdict(list)
    for x in hl:
        if not x.get("sig_ok"):
            rep.bad("webhook with a bad signature", "%s: %s" % (x.get("id"), x.get("why")))
        got[x.get("id")].append(x)
    twice = []
    for jid, h in recs.items():
        if h.get("state") not in TERMINAL:
            continue
        seen = got.get("wh_" + jid, [])
        ok = [x for x in seen if x["status"] == 200 and not x["slow"]]
        if not ok:
            rep.bad("terminal event never delivered by webhook", "%s (%d attempts, wh_state %s)" %
                    (jid, len(seen), h.get("wh_state")))
            continue
        ids = set(x.get("end_id") for x in seen)
        if len(ids) > 1:
            twice.append(jid)
        if not any(x.get("end_id") == h.get("end_id") and x.get("type") == h.get("state") for x in ok):
            rep.bad("webhook body differs from the ending", "%s: %s" % (jid, sorted(ids)))
        if h.get("state") == "succeeded" and any(x.get("has_error") for x in seen):
            rep.bad("succeeded webhook carries an error", jid)
    if twice:
        if loss_ok:
            rep.notes.append("%d jobs ended twice across the restart (two terminal webhooks with "
                             "different end_id; Redis kept the second): %s" % (len(twice), " ".join(twice[:20])))
        else:
            rep.bad("a job's webhook came with two different endings", " ".join(twice))

    # --- processes --------------------------------------------------------
    for p, code in stack.unexpected():
        rep.bad("process died unasked", "%s pid %d exit %s (log %s)" % (p.name, p.pid, code, p.log))
    # (exit statuses and sanitizer reports: chaos.py, once they stopped)

    # --- the summary ------------------------------------------------------
    ev_types = collections.Counter(e.get("type") for _, e in events)
    requeue_reason = collections.Counter(e.get("reason") for _, e in events if e.get("type") == "requeued")
    first_requeue = {}
    for eid, e in events:
        if e.get("type") in ("requeued",) + TERMINAL:
            first_requeue.setdefault(e.get("job"), []).append((int(eid.split("-")[0]), e.get("type")))
    times = []
    for jid, t_kill in kills:
        if jid not in first_requeue:
            rep.notes.append("killed worker's job %s: no requeue or ending found" % jid)
        later = [ms for ms, t in first_requeue.get(jid, []) if ms >= t_kill * 1000]
        if later:
            times.append(min(later) / 1000.0 - t_kill)
    L = []
    L.append("%-44s %s" % ("submissions", "%d (%d jobs; api %d, fcall %d, cli %d; repeats %d)" % (
        len(subs), len(firsts),
        sum(1 for s in subs if s.path == "api"), sum(1 for s in subs if s.path == "fcall"),
        sum(1 for s in subs if s.path == "cli"), sum(1 for s in subs if s.repeat_of))))
    L.append("%-44s %d" % ("job records", len(recs)))
    for st in TERMINAL + ("queued", "active", "delayed"):
        if states.get(st):
            L.append("%-44s %d" % ("  " + st, states[st]))
    for (st, code), c in sorted(codes.items()):
        if st in ("failed", "canceled"):
            L.append("%-44s %d" % ("    %s %s" % (st, code), c))
    cq = [s for s in subs if s.cancel == "queued"]
    cr = [s for s in subs if s.cancel == "running"]
    L.append("%-44s %d queued, %d running" % ("cancels sent", len(cq), len(cr)))
    L.append("%-44s %d" % ("refund entries", len(refunds)))
    L.append("%-44s %d (%s)" % ("requeued events (reclaims)", ev_types.get("requeued", 0),
                                 ", ".join("%s %d" % kv for kv in requeue_reason.items())))
    L.append("%-44s %d" % ("reclaims (sum of job records)", sum(int(h.get("reclaims", 0) or 0) for h in recs.values())))
    L.append("%-44s %d" % ("retrying events (retries)", ev_types.get("retrying", 0)))
    L.append("%-44s %d" % ("worker kill -9 / SIGTERM drains", sum(1 for k in stack.procs if k.kind == "worker" and k.killed == 9)) +
             " / %d" % sum(1 for k in stack.procs if k.kind == "worker" and k.killed == 15 and getattr(k, "drained", False)))
    L.append("%-44s %d" % ("sim crashes (restarted)", stack.sim_restarts))
    L.append("%-44s %s" % ("jobs held by killed workers", len(kills)))
    if times:
        L.append("%-44s %.2f s / %.2f s" % ("requeue after a kill: max / p99", max(times), pct(times, 99)))
    else:
        L.append("%-44s -" % "requeue after a kill: max / p99")
    att = len(hl)
    L.append("%-44s %d attempts, %d refused on purpose, %d held past timeout, %d bad signatures" % (
        "webhook requests", att, sum(1 for x in hl if x["status"] != 200),
        sum(1 for x in hl if x["slow"]), sum(1 for x in hl if not x.get("sig_ok"))))
    for x in restarts:
        L.append("%-44s %s" % ("redis " + x.get("how", "?"), json.dumps(x, sort_keys=True)))
    if unknown_n:
        L.append("%-44s %d (found in Redis: %d)" % ("submissions without an answer", len(unknown_n),
                                                    sum(1 for n in unknown_n if by_n.get(n))))
    return rep, L
