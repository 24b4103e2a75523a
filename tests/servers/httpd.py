#!/usr/bin/python3
"""A static HTTP/1.1 file server on 127.0.0.1 with fault injection, for srlaunch's pull tests.

    httpd.py --root DIR [--port N] [--log FILE] [fault rules...]

Binds 127.0.0.1:PORT (0, the default, picks a free port), prints the port and a newline on
stdout once listening, then serves DIR until killed (SIGTERM/SIGINT exit cleanly).

Serving: GET and HEAD; a file F is served with Content-Length, `Range: bytes=N-` / `bytes=N-M`
(206 + Content-Range; 416 past the end). A directory is served from its file `index` if it
has one (404 otherwise). Sidecar files next to F, never needed by the client:
    F.content-type   the Content-Type (default application/octet-stream)
    F.digest         a Docker-Content-Digest header
    F.headers        extra "Name: value" lines
so a directory tree can act as a static, read-only OCI registry
(v2/index, v2/NAME/manifests/REF, v2/NAME/blobs/sha256:HEX; see mkimage.py static-registry).

Fault rules (P is a URL path such as /alpine/v3.20/releases/x86_64/x.tar.gz; repeatable):
    --drop-after P=N        the FIRST GET of P sends full headers, N body bytes, then closes
    --status P=CODE[:COUNT] the first COUNT requests of P (default: all) answer CODE
    --no-range P            Range is ignored for P: 200 with the whole file
    --throttle P=BPS        P's body is sent at about BPS bytes per second
    --redirect P=URL        P answers 302 with Location: URL (URL may be a path on this server)
    --no-length P           P's body is sent without Content-Length, delimited by closing
--log FILE: one line per request, "METHOD PATH RANGE STATUS" (RANGE is the Range header without
spaces, or "-"), flushed when the response headers go out.
"""
import argparse
import http.server
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse


class Rules:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.drop_after = {}   # path -> bytes; removed once used
        self.status = {}       # path -> [code, remaining or None]
        self.no_range = set(args.no_range)
        self.no_length = set(args.no_length)
        self.throttle = {}
        self.redirect = {}
        for spec in args.drop_after:
            p, n = split_rule(spec, "--drop-after")
            self.drop_after[p] = int(n)
        for spec in args.status:
            p, v = split_rule(spec, "--status")
            code, _, count = v.partition(":")
            self.status[p] = [int(code), int(count) if count else None]
        for spec in args.throttle:
            p, v = split_rule(spec, "--throttle")
            self.throttle[p] = max(1, int(v))
        for spec in args.redirect:
            p, v = split_rule(spec, "--redirect")
            self.redirect[p] = v

    def take_status(self, path):
        with self.lock:
            rule = self.status.get(path)
            if rule is None:
                return None
            code, remaining = rule
            if remaining is None:
                return code
            if remaining <= 0:
                return None
            rule[1] = remaining - 1
            return code

    def take_drop(self, path):
        with self.lock:
            return self.drop_after.pop(path, None)


def split_rule(spec, flag):
    p, sep, v = spec.rpartition("=")
    if not sep or not p.startswith("/"):
        sys.exit(f"httpd.py: {flag} wants PATH=VALUE with an absolute URL path, got {spec!r}")
    return p, v


class Log:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.f = open(path, "a", buffering=1) if path else None

    def line(self, method, path, rng, status):
        if not self.f:
            return
        with self.lock:
            self.f.write(f"{method} {path} {rng} {status}\n")
            self.f.flush()


def make_handler(root, rules, log):
    root = os.path.realpath(root)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def version_string(self):
            return "srlaunch-test-httpd/1"

        def log_message(self, fmt, *a):  # quiet: the --log file is the record
            pass

        def do_GET(self):
            self.handle_one(head=False)

        def do_HEAD(self):
            self.handle_one(head=True)

        def range_header(self):
            r = self.headers.get("Range")
            return r.replace(" ", "") if r else "-"

        def simple(self, code, body=b"", extra=None, close=False):
            log.line(self.command, self.url_path, self.range_header(), code)
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def resolve(self, path):
            rel = path.lstrip("/")
            parts = [p for p in rel.split("/") if p]
            if any(p in (".", "..") for p in parts):
                return None
            full = os.path.join(root, *parts) if parts else root
            if os.path.isdir(full):
                full = os.path.join(full, "index")
            real = os.path.realpath(full)
            if real != root and not real.startswith(root + os.sep):
                return None
            return full if os.path.isfile(full) else None

        def handle_one(self, head):
            self.url_path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
            path = self.url_path
            code = rules.take_status(path)
            if code is not None:
                msg = f"injected status {code}\n".encode()
                self.simple(code, msg)
                return
            if path in rules.redirect:
                self.simple(302, b"", {"Location": rules.redirect[path]})
                return
            full = self.resolve(path)
            if full is None:
                self.simple(404, b"not found\n")
                return
            size = os.path.getsize(full)
            start, end = 0, size - 1
            status = 200
            rng = self.headers.get("Range")
            if rng and path not in rules.no_range:
                parsed = parse_range(rng, size)
                if parsed == "unsatisfiable":
                    self.simple(416, b"", {"Content-Range": f"bytes */{size}"})
                    return
                if parsed is not None:
                    start, end = parsed
                    status = 206
            length = end - start + 1 if size else 0
            drop = None if head else rules.take_drop(path)
            no_length = path in rules.no_length
            log.line(self.command, path, self.range_header(), status)
            self.send_response(status)
            self.send_header("Content-Type", sidecar(full, "content-type") or "application/octet-stream")
            digest = sidecar(full, "digest")
            if digest:
                self.send_header("Docker-Content-Digest", digest)
            extra = sidecar(full, "headers")
            for line in (extra or "").splitlines():
                k, sep, v = line.partition(":")
                if sep:
                    self.send_header(k.strip(), v.strip())
            if path not in rules.no_range:
                self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            if no_length:
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(length))
            self.end_headers()
            if head:
                return
            limit = length if drop is None else min(drop, length)
            rate = rules.throttle.get(path)
            try:
                send_file(self.wfile, full, start, limit, rate)
                if drop is not None:
                    self.wfile.flush()
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    return Handler


def parse_range(value, size):
    """(start, end) for a single `bytes=` range, None to ignore it, "unsatisfiable" past the end."""
    value = value.replace(" ", "")
    if not value.startswith("bytes=") or "," in value:
        return None
    first, sep, last = value[len("bytes="):].partition("-")
    if not sep:
        return None
    try:
        if first == "":  # suffix: the last N bytes
            n = int(last)
            if n <= 0:
                return "unsatisfiable"
            return max(0, size - n), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return "unsatisfiable"
    return start, min(end, size - 1)


def sidecar(path, kind):
    try:
        with open(f"{path}.{kind}") as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def send_file(out, path, start, count, rate):
    chunk = 65536 if rate is None else max(1, rate // 20)
    with open(path, "rb") as f:
        f.seek(start)
        t0 = time.monotonic()
        sent = 0
        while sent < count:
            data = f.read(min(chunk, count - sent))
            if not data:
                break
            out.write(data)
            sent += len(data)
            if rate is not None:
                out.flush()
                ahead = sent / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log")
    ap.add_argument("--drop-after", action="append", default=[], metavar="P=N")
    ap.add_argument("--status", action="append", default=[], metavar="P=CODE[:COUNT]")
    ap.add_argument("--no-range", action="append", default=[], metavar="P")
    ap.add_argument("--throttle", action="append", default=[], metavar="P=BPS")
    ap.add_argument("--redirect", action="append", default=[], metavar="P=URL")
    ap.add_argument("--no-length", action="append", default=[], metavar="P")
    args = ap.parse_args()
    if not os.path.isdir(args.root):
        sys.exit(f"httpd.py: --root {args.root}: not a directory")

    server = Server(("127.0.0.1", args.port), make_handler(args.root, Rules(args), Log(args.log)))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    sys.stdout.write(f"{server.server_address[1]}\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
