#!/usr/bin/python3
"""A Docker registry token issuer on 127.0.0.1 (anonymous, RS256), for the bearer-token tests.

    token_issuer.py --cert-out CERT.pem [--key KEY.pem --cert CERT.pem] [--allow PATTERN ...]
                    [--issuer NAME] [--port N] [--log FILE] [--ttl SECONDS]

Generates an RSA key and a self-signed certificate (or uses --key/--cert), writes the
certificate (PEM) to --cert-out for the registry's `auth: token: rootcertbundle`, listens on
127.0.0.1:PORT (0, the default, picks one), prints the port and a newline once listening.

GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...] answers
    {"token": JWT, "access_token": JWT, "expires_in": TTL, "issued_at": ISO8601}
where JWT is RS256-signed, its header carries x5c = [base64 DER of the certificate], and its
claims are iss (--issuer, default srlaunch-test-issuer), sub, aud = S, exp, nbf, iat, jti and
access = [{"type": "repository", "name": NAME, "actions": ["pull"]}] for every requested scope
whose NAME matches an --allow pattern (fnmatch; repeatable) and that asks for pull. Other scopes
are left out of access, so the registry answers 401 (insufficient scope). Pushing is never
granted (populate the registry before it enables auth, or through a second, open instance).
No credentials are asked for. A missing `service` answers 400.
--log FILE: one line per request: "GET /token SCOPES -> GRANTED" (or the path and status).
"""
import argparse
import base64
import datetime
import fnmatch
import http.server
import json
import os
import signal
import sys
import threading
import time
import urllib.parse
import uuid

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def make_key_and_cert():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "srlaunch test token issuer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                          crl_sign=False, encipher_only=False, decipher_only=False),
            critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def parse_scopes(values):
    """'repository:lab/plain:pull,push' (possibly several, space-separated) -> [(type, name, [actions])]."""
    out = []
    for value in values:
        for scope in value.split():
            typ, sep, rest = scope.partition(":")
            name, sep2, actions = rest.rpartition(":")
            if not sep or not sep2:
                continue
            out.append((typ, name, [a for a in actions.split(",") if a]))
    return out


def make_handler(key, cert_b64, args, log):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def version_string(self):
            return "srlaunch-test-token-issuer/1"

        def log_message(self, fmt, *a):
            pass

        def reply(self, code, body, ctype="application/json"):
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/token":
                log(f"GET {url.path} -> 404")
                self.reply(404, '{"errors":[{"code":"NOT_FOUND"}]}')
                return
            q = urllib.parse.parse_qs(url.query)
            service = q.get("service", [""])[0]
            if not service:
                log("GET /token (no service) -> 400")
                self.reply(400, '{"errors":[{"code":"BAD_REQUEST","message":"service is required"}]}')
                return
            access = []
            requested = parse_scopes(q.get("scope", []))
            for typ, name, actions in requested:
                if typ != "repository" or "pull" not in actions and "*" not in actions:
                    continue
                if any(fnmatch.fnmatchcase(name, p) for p in args.allow):
                    access.append({"type": "repository", "name": name, "actions": ["pull"]})
            now = int(time.time())
            claims = {
                "iss": args.issuer,
                "sub": q.get("account", [""])[0],
                "aud": service,
                "exp": now + args.ttl,
                "nbf": now - 10,
                "iat": now,
                "jti": uuid.uuid4().hex,
                "access": access,
            }
            token = jwt.encode(claims, key, algorithm="RS256", headers={"x5c": [cert_b64]})
            issued = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            want = " ".join(f"{t}:{n}:{','.join(a)}" for t, n, a in requested) or "(none)"
            got = " ".join(a["name"] for a in access) or "(none)"
            log(f"GET /token {want} -> {got}")
            self.reply(200, json.dumps({"token": token, "access_token": token,
                                        "expires_in": args.ttl, "issued_at": issued}))

        def do_HEAD(self):
            self.do_GET()

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cert-out", help="write the certificate (PEM) here, for rootcertbundle")
    ap.add_argument("--key", help="PEM RSA private key (with --cert) instead of a fresh one")
    ap.add_argument("--cert", help="PEM certificate for --key")
    ap.add_argument("--allow", action="append", default=[], metavar="PATTERN",
                    help="grant pull on repositories matching this fnmatch pattern (repeatable)")
    ap.add_argument("--issuer", default="srlaunch-test-issuer")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ttl", type=int, default=300)
    ap.add_argument("--log")
    args = ap.parse_args()

    if args.key or args.cert:
        if not (args.key and args.cert):
            sys.exit("token_issuer.py: --key and --cert go together")
        with open(args.key, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        with open(args.cert, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
    else:
        key, cert = make_key_and_cert()
    if args.cert_out:
        tmp = args.cert_out + ".tmp"
        with open(tmp, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        os.replace(tmp, args.cert_out)
    cert_b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    lock = threading.Lock()
    logf = open(args.log, "a", buffering=1) if args.log else None

    def log(line):
        if logf:
            with lock:
                logf.write(line + "\n")
                logf.flush()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(key, cert_b64, args, log))
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    sys.stdout.write(f"{server.server_address[1]}\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
