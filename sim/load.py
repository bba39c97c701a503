#!/usr/bin/env python3
"""
sim/load.py: drives comfyq-sim as comfyq-worker drives it and reports the
sim's own CPU per prompt. It starts the sim (no simulated delays) with its
base directory under --dir (/dev/shm: tmpfs, /tmp: the disk's file system),
opens one WebSocket (/ws?clientId=...) and one keep-alive HTTP connection,
then per prompt, as the worker does for a smoke_invert job at 8x8:
POST /prompt (EmptyImage -> ImageInvert -> SaveImage, filename_prefix
comfyq/<job>/a1/out, so every prompt saves one new file in new folders),
waits for `executing` {node: null} of that prompt on the socket, reads
GET /history/<id> and GET /view of the file. The sim's user and system
CPU come from /proc/<pid>/stat (clock ticks) before and after the measured
prompts (and the total from /proc/<pid>/schedstat, in ns); the warm-up
prompts are not counted.

  build-rel/bin/comfyq-sim must exist (cmake -DCMAKE_BUILD_TYPE=Release)
  python3 sim/load.py --sim build-rel/bin/comfyq-sim --dir /dev/shm -n 5000
  --floor: three GET /prompt a round instead (the HTTP floor: loop,
  parser, sockets; no prompt, no file, no WebSocket event)
  --perf FILE: run the measured prompts under `perf record -g -o FILE`
  --wrap 'valgrind --tool=callgrind ...': start the sim under a wrapper
"""
import argparse
import base64
import http.client
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def ws_open(port, client_id):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /ws?clientId=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
               % (client_id, key)).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            sys.exit("load: the socket closed during the upgrade")
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    if b" 101 " not in head.split(b"\r\n")[0]:
        sys.exit("load: no upgrade: %r" % head)
    return s, bytearray(rest)


def ws_frames(s, buf):
    """Yields the text of each server frame (unmasked, unfragmented)."""
    while True:
        while True:
            if len(buf) >= 2:
                n = buf[1] & 0x7f
                off = 2
                if n == 126 and len(buf) >= 4:
                    n = int.from_bytes(buf[2:4], "big")
                    off = 4
                elif n == 127 and len(buf) >= 10:
                    n = int.from_bytes(buf[2:10], "big")
                    off = 10
                if n < 126 or off > 2:
                    if len(buf) >= off + n:
                        op = buf[0] & 0x0f
                        data = bytes(buf[off:off + n])
                        del buf[:off + n]
                        if op == 8:
                            sys.exit("load: the sim closed the socket")
                        if op == 1:
                            yield data
                        continue
            break
        d = s.recv(65536)
        if not d:
            sys.exit("load: the socket closed")
        buf += d


def graph(prefix):
    return {
        "1": {"class_type": "EmptyImage", "inputs": {
            "width": 8, "height": 8, "batch_size": 1, "color": 0},
            "_meta": {"title": "Empty image"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]},
              "_meta": {"title": "Invert"}},
        "3": {"class_type": "SaveImage", "inputs": {
            "images": ["2", 0], "filename_prefix": prefix},
            "_meta": {"title": "Save Image"}},
    }


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]), int(rest[12])  # utime, stime


def cpu_ns(pid):
    with open("/proc/%d/schedstat" % pid) as f:
        return int(f.read().split()[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sim", default="build-rel/bin/comfyq-sim")
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("-n", type=int, default=3000)
    ap.add_argument("--warm", type=int, default=200)
    ap.add_argument("--perf", default=None)
    ap.add_argument("--wrap", default="")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--floor", action="store_true")
    a = ap.parse_args()

    base = tempfile.mkdtemp(prefix="comfyq-simload.", dir=a.dir)
    pf = os.path.join(base, "port")
    argv = shlex.split(a.wrap) + [
        a.sim, "--port", "0", "--port-file", pf, "--base-directory", base,
        "--step-ms", "0", "--model-load-ms", "0", "--log-level", "warning"]
    sim = subprocess.Popen(argv)
    try:
        for _ in range(3000):
            if os.path.exists(pf) and open(pf).read().endswith("\n"):
                break
            time.sleep(0.01)
        port = int(open(pf).read())
        cid = "load-client"
        ws, buf = ws_open(port, cid)
        frames = ws_frames(ws, buf)
        h = http.client.HTTPConnection("127.0.0.1", port)
        h.connect()
        h.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tick = os.sysconf("SC_CLK_TCK")

        def floor(i):
            for _ in range(3):
                h.request("GET", "/prompt")
                r = h.getresponse()
                r.read()

        def one(i):
            pid = "p%08d-0000-4000-8000-000000000000" % i
            body = json.dumps({"prompt": graph("comfyq/j%d/a1/out" % i),
                               "client_id": cid, "prompt_id": pid})
            h.request("POST", "/prompt", body,
                      {"Content-Type": "application/json"})
            r = h.getresponse()
            r.read()
            if r.status != 200:
                sys.exit("load: POST /prompt: %d" % r.status)
            for t in frames:
                if t.startswith(b'{"type":"executing"'):
                    d = json.loads(t)["data"]
                    if d["node"] is None and d["prompt_id"] == pid:
                        break
            h.request("GET", "/history/" + pid)
            r = h.getresponse()
            hist = json.loads(r.read())
            img = hist[pid]["outputs"]["3"]["images"][0]
            h.request("GET", "/view?filename=%s&subfolder=%s&type=%s" % (
                img["filename"], img["subfolder"], img["type"]))
            r = h.getresponse()
            png = r.read()
            if r.status != 200 or not png.startswith(b"\x89PNG"):
                sys.exit("load: GET /view: %d" % r.status)

        if a.floor:
            one = floor
        for i in range(a.warm):
            one(i)
        perf = None
        if a.perf:
            perf = subprocess.Popen(["perf", "record", "-g", "-o", a.perf,
                                     "-p", str(sim.pid)],
                                    stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        u0, s0 = cpu_ticks(sim.pid)
        c0 = cpu_ns(sim.pid)
        t0 = time.monotonic()
        for i in range(a.warm, a.warm + a.n):
            one(i)
        t1 = time.monotonic()
        u1, s1 = cpu_ticks(sim.pid)
        c1 = cpu_ns(sim.pid)
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
        us = 1e6 / tick / a.n
        print("load: %d prompts in %s, %.1f us a round, sim CPU %.1f us "
              "per prompt (schedstat; stat: user %.1f, system %.1f)" % (
                  a.n, a.dir, (t1 - t0) * 1e6 / a.n, (c1 - c0) / 1e3 / a.n,
                  (u1 - u0) * us, (s1 - s0) * us))
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait()
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
