#!/usr/bin/env python3
"""A client of ComfyUI's own API, written as bot developers write one.

The same script drives one ComfyUI (or comfyq-sim) and the whole fleet
behind comfyq-scheduler: only the base URL changes (http://HOST:8188 or
http://HOST:8680/comfy), and, where the scheduler has tokens, --token adds
an Authorization header. HTTP is the standard library's urllib; the
WebSocket is websocket-client (Debian python3-websocket), as in ComfyUI's
own script examples.

    comfy_client.py --url http://127.0.0.1:8188 [--token SECRET] \
        [--image in.png] [--out DIR] [--report FILE] [--timeout S]

What it does, in order, and fails loudly (exit 1) when an answer is not
ComfyUI's:
  1. GET /system_stats (devices), GET /object_info (the node classes it
     needs, and a checkpoint from CheckpointLoaderSimple's list),
     GET /object_info/KSampler;
  2. opens /ws?clientId=<uuid4> (the first message is status with the
     client id as sid) and keeps it for every prompt;
  3. POST /upload/image (multipart: image, subfolder) of --image, or of a
     small PNG it draws;
  4. prompt "invert": LoadImage of the upload -> ImageInvert -> SaveImage;
     POST /prompt with the client_id, then the socket's messages for its
     prompt_id until executing with node null, GET /history/{id}, and
     GET /view of every output listed there (saved under --out);
  5. prompts "cached_a" and "cached_b": a short txt2img twice with
     another filename_prefix, so the second takes every node but
     SaveImage from ComfyUI's cache (execution_cached lists them);
  6. prompt "long": a txt2img of many steps; on its first progress
     message GET /queue (it is running) and GET /prompt, then POST
     /interrupt with its prompt_id; the socket says execution_interrupted,
     history says error, and GET /queue no longer lists it.
With --report, what it saw goes to FILE as JSON: per prompt the socket's
messages for it (type and node), history's shape, and each output's size
and SHA-256 (tests/integration/comfyclient.sh compares two such reports).
Prints one line per step; exit 0 when all went as ComfyUI does, 1 when
not, 2 when the server could not be reached.
"""
import argparse
import hashlib
import json
import os
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib

try:
    import websocket  # websocket-client
except ImportError:
    sys.exit("comfy_client: needs websocket-client "
             "(apt-get install python3-websocket)")

NEEDED = ("LoadImage", "ImageInvert", "SaveImage", "EmptyImage",
          "CheckpointLoaderSimple", "CLIPTextEncode", "EmptyLatentImage",
          "KSampler", "VAEDecode")


class Failed(Exception):
    pass


class Client:
    def __init__(self, args):
        self.base = args.url.rstrip("/")
        self.token = args.token
        self.timeout = args.timeout
        self.client_id = str(uuid.uuid4())
        self.ws = None

    def headers(self, extra=None):
        h = {}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        h.update(extra or {})
        return h

    def http(self, method, path, body=None, ctype=None):
        """(status, bytes) of one request; HTTP errors are answers too."""
        h = self.headers({"Content-Type": ctype} if ctype else None)
        req = urllib.request.Request(self.base + path, data=body,
                                     method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def get_json(self, path):
        status, body = self.http("GET", path)
        if status != 200:
            raise Failed("GET %s: HTTP %d: %s" % (path, status, body[:200]))
        return json.loads(body)

    def post_json(self, path, obj):
        return self.http("POST", path, json.dumps(obj).encode(),
                         "application/json")

    # The socket: every JSON message, kept in arrival order.
    def connect(self):
        url = self.base.replace("http", "ws", 1) + "/ws?" + \
            urllib.parse.urlencode({"clientId": self.client_id})
        hdr = ["%s: %s" % kv for kv in self.headers().items()]
        self.ws = websocket.create_connection(url, header=hdr,
                                              timeout=self.timeout)
        first = self.recv()
        if first.get("type") != "status" or \
                first["data"].get("sid") != self.client_id:
            raise Failed("first socket message is not status with our "
                         "sid: %r" % first)
        return first

    def recv(self):
        while True:
            out = self.ws.recv()
            if isinstance(out, str):
                return json.loads(out)
            # binary frames are previews: not ours to read here

    def follow(self, prompt_id, on_message=None):
        """The messages for prompt_id until executing with node null."""
        seen = []
        deadline = time.time() + self.timeout
        while time.time() < deadline:
            m = self.recv()
            data = m.get("data") or {}
            if data.get("prompt_id") != prompt_id:
                continue
            seen.append(m)
            if on_message is not None:
                on_message(m)
            if m["type"] == "executing" and data.get("node") is None:
                return seen
        raise Failed("prompt %s: no end within %s s" %
                     (prompt_id, self.timeout))

    def upload(self, name, data, subfolder):
        boundary = uuid.uuid4().hex
        parts = []
        for field, value in (("subfolder", subfolder), ("type", "input")):
            parts.append(("--%s\r\nContent-Disposition: form-data; "
                          "name=\"%s\"\r\n\r\n%s\r\n" %
                          (boundary, field, value)).encode())
        parts.append(("--%s\r\nContent-Disposition: form-data; "
                      "name=\"image\"; filename=\"%s\"\r\nContent-Type: "
                      "image/png\r\n\r\n" % (boundary, name)).encode() +
                     data + b"\r\n")
        parts.append(("--%s--\r\n" % boundary).encode())
        status, body = self.http(
            "POST", "/upload/image", b"".join(parts),
            "multipart/form-data; boundary=" + boundary)
        if status != 200:
            raise Failed("upload: HTTP %d: %s" % (status, body[:200]))
        return json.loads(body)

    def queue(self):
        q = self.get_json("/queue")
        if sorted(q) != ["queue_pending", "queue_running"]:
            raise Failed("/queue keys: %r" % sorted(q))
        return [i[1] for i in q["queue_running"]], \
            [i[1] for i in q["queue_pending"]]


def png(width, height):
    """A small RGB PNG: a gradient, so an inverted copy differs."""
    rows = b"".join(b"\0" + b"".join(bytes(((x * 4) & 255, (y * 8) & 255,
                                            128)) for x in range(width))
                    for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0,
                                       0, 0)) +
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def ws_summary(messages):
    """What a client reads from the socket: type and the node named."""
    out = []
    for m in messages:
        d = m["data"]
        if m["type"] in ("executing", "executed"):
            out.append([m["type"], d.get("node")])
        elif m["type"] == "execution_cached":
            out.append([m["type"], sorted(d.get("nodes") or [])])
        elif m["type"] in ("execution_error", "execution_interrupted"):
            out.append([m["type"], d.get("node_id"),
                        sorted(d.get("executed") or [])])
        else:
            out.append([m["type"]])
    return out


def outputs_of(entry):
    """(node, key, item) for every file history lists, in its order."""
    for node, ui in entry["outputs"].items():
        for key, items in ui.items():
            if not isinstance(items, list):
                continue
            for it in items:
                if isinstance(it, dict) and "filename" in it:
                    yield node, key, it


def run_prompt(c, name, graph, args, report, on_message=None,
               want="success"):
    status, body = c.post_json("/prompt", {"prompt": graph,
                                           "client_id": c.client_id})
    reply = json.loads(body) if body else {}
    if status != 200 or reply.get("node_errors"):
        raise Failed("%s: POST /prompt: HTTP %d: %s" %
                     (name, status, body[:300]))
    pid = reply["prompt_id"]
    print("%s: prompt %s number %s" % (name, pid, reply.get("number")))
    seen = c.follow(pid, on_message)
    types = [m["type"] for m in seen]
    print("%s: socket: %s" % (name, " ".join(types)))
    end = "execution_success" if want == "success" else \
        "execution_interrupted"
    if end not in types:
        raise Failed("%s: the socket never said %s" % (name, end))
    hist = c.get_json("/history/" + urllib.parse.quote(pid))
    if list(hist) != [pid]:
        raise Failed("%s: /history/%s has %r" % (name, pid, list(hist)))
    entry = hist[pid]
    st = entry.get("status") or {}
    views = []
    for node, key, it in outputs_of(entry):
        q = urllib.parse.urlencode({"filename": it["filename"],
                                    "subfolder": it.get("subfolder", ""),
                                    "type": it.get("type", "output")})
        code, data = c.http("GET", "/view?" + q)
        if code != 200:
            raise Failed("%s: /view of %s: HTTP %d" %
                         (name, it["filename"], code))
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            path = os.path.join(args.out, "%s_%s_%s" %
                                (name, node, os.path.basename(
                                    it["filename"])))
            with open(path, "wb") as f:
                f.write(data)
            print("%s: saved %s" % (name, path))
        views.append({"node": node, "key": key, "bytes": len(data),
                      "sha256": hashlib.sha256(data).hexdigest()})
    report["prompts"][name] = {
        "ws": ws_summary(seen),
        "history": {
            "keys": sorted(entry),
            "outputs": {n: {k: len(v) for k, v in ui.items()
                            if isinstance(v, list)}
                        for n, ui in entry["outputs"].items()},
            "status_str": st.get("status_str"),
            "completed": st.get("completed"),
            "messages": [m[0] for m in st.get("messages", [])],
            "cached": sorted(next((m[1].get("nodes") or [] for m in
                                   st.get("messages", [])
                                   if m[0] == "execution_cached"), [])),
        },
        "views": views,
    }
    print("%s: history %s completed=%s, %d output(s)" %
          (name, st.get("status_str"), st.get("completed"), len(views)))
    ok = "success" if want == "success" else "error"
    if st.get("status_str") != ok or st.get("completed") != (ok == "success"):
        raise Failed("%s: history status %r" % (name, st))
    return pid, entry


def invert_graph(image):
    return {"1": {"class_type": "LoadImage", "inputs": {"image": image}},
            "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
            "3": {"class_type": "SaveImage",
                  "inputs": {"images": ["2", 0],
                             "filename_prefix": "comfy_client/invert"}}}


def txt2img(ckpt, text, steps, prefix):
    return {"4": {"class_type": "CheckpointLoaderSimple",
                  "inputs": {"ckpt_name": ckpt}},
            "5": {"class_type": "EmptyLatentImage",
                  "inputs": {"width": 256, "height": 256, "batch_size": 1}},
            "6": {"class_type": "CLIPTextEncode",
                  "inputs": {"text": text, "clip": ["4", 1]}},
            "7": {"class_type": "CLIPTextEncode",
                  "inputs": {"text": "blurry", "clip": ["4", 1]}},
            "3": {"class_type": "KSampler",
                  "inputs": {"model": ["4", 0], "seed": 7, "steps": steps,
                             "cfg": 7.0, "sampler_name": "euler",
                             "scheduler": "normal", "positive": ["6", 0],
                             "negative": ["7", 0],
                             "latent_image": ["5", 0], "denoise": 1.0}},
            "8": {"class_type": "VAEDecode",
                  "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
            "9": {"class_type": "SaveImage",
                  "inputs": {"images": ["8", 0], "filename_prefix": prefix}}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True,
                    help="ComfyUI's base URL (or the scheduler's .../comfy)")
    ap.add_argument("--token", help="Bearer token (the scheduler's tokens)")
    ap.add_argument("--image", help="PNG to upload (default: one drawn here)")
    ap.add_argument("--out", help="folder for the outputs fetched")
    ap.add_argument("--report", help="write what was seen here, as JSON")
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    c = Client(args)
    report = {"prompts": {}}
    try:
        stats = c.get_json("/system_stats")
        if sorted(stats) != ["devices", "system"]:
            raise Failed("/system_stats keys: %r" % sorted(stats))
        print("system_stats: %d device(s)" % len(stats["devices"]))
        info = c.get_json("/object_info")
        missing = [k for k in NEEDED if k not in info]
        if missing:
            raise Failed("/object_info lacks %s" % ", ".join(missing))
        ckpts = info["CheckpointLoaderSimple"]["input"]["required"][
            "ckpt_name"][0]
        if not ckpts:
            raise Failed("no checkpoint in /object_info")
        one = c.get_json("/object_info/KSampler")
        if list(one) != ["KSampler"]:
            raise Failed("/object_info/KSampler: %r" % list(one))
        print("object_info: %d classes, checkpoint %s" % (len(info), ckpts[0]))
        report["system_stats"] = {"keys": sorted(stats),
                                  "device_keys": sorted(
                                      set().union(*[d.keys() for d in
                                                    stats["devices"]]))}
        report["object_info"] = {"KSampler": sorted(one["KSampler"])}

        first = c.connect()
        print("socket: status, queue_remaining %s" %
              first["data"]["status"]["exec_info"]["queue_remaining"])

        if args.image:
            with open(args.image, "rb") as f:
                data = f.read()
            name = os.path.basename(args.image)
        else:
            data, name = png(48, 32), "comfy_client.png"
        up = c.upload(name, data, "comfy_client")
        if sorted(up) != ["name", "subfolder", "type"]:
            raise Failed("upload answer: %r" % up)
        print("upload: %s/%s (%s)" % (up["subfolder"], up["name"], up["type"]))
        report["upload"] = up

        run_prompt(c, "invert", invert_graph(up["subfolder"] + "/" +
                                             up["name"]), args, report)
        fox = ("a red fox", 4)
        run_prompt(c, "cached_a", txt2img(ckpts[0], *fox, "comfy_client/a"),
                   args, report)
        run_prompt(c, "cached_b", txt2img(ckpts[0], *fox, "comfy_client/b"),
                   args, report)

        state = {"interrupted": False}

        def on_long(m):
            if m["type"] != "progress" or state["interrupted"]:
                return
            pid = m["data"]["prompt_id"]
            running, pending = c.queue()
            remaining = c.get_json("/prompt")["exec_info"]["queue_remaining"]
            print("long: running %s, queue_remaining %s" %
                  (pid in running, remaining))
            if pid not in running or remaining < 1:
                raise Failed("long: not in /queue's queue_running: %r" %
                             running)
            code, body = c.post_json("/interrupt", {"prompt_id": pid})
            if code != 200 or body:
                raise Failed("/interrupt: HTTP %d %r" % (code, body[:100]))
            state["interrupted"] = True
            print("long: interrupted")

        pid, _ = run_prompt(c, "long", txt2img(ckpts[0], "a lighthouse",
                                               400, "comfy_client/long"),
                            args, report, on_long, want="interrupted")
        running, pending = c.queue()
        if pid in running or pid in pending:
            raise Failed("long: still queued after the interrupt")
        report["queue_after"] = {"running": len(running),
                                 "pending": len(pending)}
        print("queue: %d running, %d pending" % (len(running), len(pending)))
    except Failed as e:
        print("comfy_client: %s" % e, file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError,
            websocket.WebSocketException) as e:
        print("comfy_client: %s: %s" % (args.url, e), file=sys.stderr)
        return 2
    finally:
        if c.ws is not None:
            c.ws.close()
        if args.report:
            with open(args.report, "w") as f:
                json.dump(report, f, indent=1, sort_keys=True)
    print("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
