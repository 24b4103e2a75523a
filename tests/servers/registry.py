#!/usr/bin/python3
"""Runs Debian's docker-registry (distribution 2.8) on 127.0.0.1 for the pull tests.

    registry.py --storage DIR [--port N] [--log FILE] [--config FILE]
                [--token-realm URL --token-cert PEM [--token-service S] [--token-issuer I]]

Writes a config to --config (default DIR/registry.yml): filesystem storage under DIR, deletes
enabled, listening on 127.0.0.1:PORT (PORT 0, the default, means a free one found by binding
port 0 first). Starts `docker-registry serve CONFIG` as its child, the registry's output going
to --log (default DIR/registry.log). Two instances may serve one DIR with different configs.
Once GET /v2/ answers (200, or 401 with token auth) it prints the port and a newline on
stdout. It then stays in the foreground until the registry exits:
SIGTERM/SIGINT are passed on, and the registry gets SIGKILL if this script dies (even of
SIGKILL), so killing this process never leaves a registry behind.

With --token-realm the registry uses `auth: token` (realm URL, service, issuer, rootcertbundle
= --token-cert); pair it with token_issuer.py (service defaults to srlaunch-test-registry,
issuer to srlaunch-test-issuer, token_issuer.py's default). Exit status 1 if the registry does
not come up within 20 s.
"""
import argparse
import ctypes
import http.client
import os
import signal
import socket
import subprocess
import sys
import time

REGISTRY = "/usr/bin/docker-registry"
PR_SET_PDEATHSIG = 1


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_text(args, port):
    text = f"""version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {os.path.abspath(args.storage)}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:{port}
  secret: srlaunch-test-secret
  headers:
    X-Content-Type-Options: [nosniff]
"""
    if args.token_realm:
        text += f"""auth:
  token:
    realm: {args.token_realm}
    service: {args.token_service}
    issuer: {args.token_issuer}
    rootcertbundle: {os.path.abspath(args.token_cert)}
"""
    return text


def set_pdeathsig():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def ready(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        c.request("GET", "/v2/")
        status = c.getresponse().status
        c.close()
        return status in (200, 401)
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--storage", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log")
    ap.add_argument("--config")
    ap.add_argument("--token-realm")
    ap.add_argument("--token-cert")
    ap.add_argument("--token-service", default="srlaunch-test-registry")
    ap.add_argument("--token-issuer", default="srlaunch-test-issuer")
    args = ap.parse_args()
    if bool(args.token_realm) != bool(args.token_cert):
        sys.exit("registry.py: --token-realm and --token-cert go together")
    os.makedirs(args.storage, exist_ok=True)
    cfg = args.config or os.path.join(args.storage, "registry.yml")
    logpath = args.log or os.path.join(args.storage, "registry.log")

    child = None

    def forward(sig, _frame):
        if child and child.poll() is None:
            child.send_signal(sig)
        else:
            sys.exit(0)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    for attempt in range(5):
        port = args.port or free_port()
        with open(cfg, "w") as f:
            f.write(config_text(args, port))
        logf = open(logpath, "a")
        child = subprocess.Popen([REGISTRY, "serve", cfg], stdin=subprocess.DEVNULL, stdout=logf,
                                 stderr=subprocess.STDOUT, preexec_fn=set_pdeathsig)
        logf.close()
        deadline = time.monotonic() + 20
        while child.poll() is None and time.monotonic() < deadline and not ready(port):
            time.sleep(0.05)
        if child.poll() is None and ready(port):
            break
        if child.poll() is None:
            child.kill()
        child.wait()
        if args.port:  # a fixed port that does not work will not start working
            break
    if child.poll() is not None:
        sys.exit(f"registry.py: docker-registry did not start; see {logpath}")

    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    while True:
        try:
            status = child.wait()
            break
        except InterruptedError:
            continue
    sys.exit(status if status >= 0 else 128 - status)


if __name__ == "__main__":
    main()
