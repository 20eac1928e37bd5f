#!/usr/bin/env python3
"""A small fault-injecting HTTP proxy in front of a Kubernetes API server (tests only).

Standard library only. Listens on 127.0.0.1 (port 0 = a free one) and prints one
line on stdout once it accepts connections:

    listening http://127.0.0.1:PORT        (or https:// with --tls)

Modes:

  forward (default)   Forwards every request over HTTPS to the server of
                      --kubeconfig/--context, authenticating with that context's
                      client certificate (read with `kubectl config view --raw`;
                      KUBECTL overrides the kubectl found on PATH). On a seeded
                      fraction (--rate) of DELETE requests it injects one of
                      --faults instead:
                        429          Retry-After: 1 and a Status body with
                                     details.retryAfterSeconds = 1
                        500, 503     a Status body with that code
                        drop-before  closes the connection without answering;
                                     nothing is forwarded
                        drop-after   forwards the request, reads the server's
                                     answer, then closes the connection without
                                     answering (the delete really happened)
                      At most --max-per-path faults are injected on one path
                      (so a client that retries gets through in the end).
  --silent            Accepts connections, reads each request and never answers
                      (with --tls: after completing a TLS handshake with a
                      throw-away self-signed certificate made by openssl).

Control endpoints (forward mode, never forwarded, never faulted):

  GET  /__faultproxy/stats   {"requests", "deletes", "forwarded", "injected": {fault: n}}
  GET  /__faultproxy/log     every request seen: [{"seq", "t", "method", "path",
                             "query", "action", "status"}], t in Unix seconds;
                             action is "forward" or the injected fault
  POST /__faultproxy/config  JSON {"rate": F, "faults": [...], "maxPerPath": N}
                             (any subset) changes the injection from now on

With --log FILE every log entry is also appended to FILE as a JSON line.
The process runs until it is killed.
"""

import argparse
import base64
import http.client
import http.server
import json
import os
import random
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

CONTROL_PREFIX = "/__faultproxy/"
FAULTS = ("429", "500", "503", "drop-before", "drop-after")
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
REASONS = {
    429: ("TooManyRequests", "too many requests"),
    500: ("InternalError", "an error on the server (\"injected by faultproxy\") has prevented the request from succeeding"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
}


def status_body(code):
    reason, message = REASONS[code]
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if code == 429:
        body["details"] = {"retryAfterSeconds": 1}
    return json.dumps(body).encode()


class State:
    """Injection settings, counters and the request log, shared by all threads."""

    def __init__(self, rate, faults, seed, max_per_path, log_file):
        self.lock = threading.Lock()
        self.rate = rate
        self.faults = list(faults)
        self.max_per_path = max_per_path
        self.rng = random.Random(seed)
        self.per_path = {}
        self.requests = 0
        self.deletes = 0
        self.forwarded = 0
        self.injected = {f: 0 for f in FAULTS}
        self.log = []
        self.log_file = open(log_file, "a", buffering=1) if log_file else None

    def decide(self, method, path):
        """The fault to inject for this request, or None to forward it."""
        with self.lock:
            self.requests += 1
            if method != "DELETE":
                return None
            self.deletes += 1
            if not self.faults or self.rate <= 0:
                return None
            if self.per_path.get(path, 0) >= self.max_per_path:
                return None
            if self.rng.random() >= self.rate:
                return None
            fault = self.rng.choice(self.faults)
            self.per_path[path] = self.per_path.get(path, 0) + 1
            self.injected[fault] += 1
            return fault

    def record(self, method, path, query, action, status, t):
        with self.lock:
            if action == "forward" or action == "drop-after":
                self.forwarded += 1
            entry = {
                "seq": len(self.log),
                "t": t,
                "method": method,
                "path": path,
                "query": query,
                "action": action,
                "status": status,
            }
            self.log.append(entry)
            if self.log_file:
                self.log_file.write(json.dumps(entry) + "\n")

    def stats(self):
        with self.lock:
            return {
                "requests": self.requests,
                "deletes": self.deletes,
                "forwarded": self.forwarded,
                "injected": dict(self.injected),
                "rate": self.rate,
                "faults": list(self.faults),
                "maxPerPath": self.max_per_path,
            }

    def configure(self, cfg):
        with self.lock:
            if "rate" in cfg:
                self.rate = float(cfg["rate"])
            if "faults" in cfg:
                bad = [f for f in cfg["faults"] if f not in FAULTS]
                if bad:
                    raise ValueError(f"unknown faults {bad}; known: {list(FAULTS)}")
                self.faults = list(cfg["faults"])
            if "maxPerPath" in cfg:
                self.max_per_path = int(cfg["maxPerPath"])


class Upstream:
    """Where and how to forward: host, port and an SSL context with the client cert."""

    def __init__(self, kubeconfig, context, workdir):
        kubectl = os.environ.get("KUBECTL") or shutil.which("kubectl")
        if not kubectl:
            sys.exit("faultproxy: kubectl is needed to read the kubeconfig")
        cmd = [kubectl, "config", "view", "--raw", "--minify", "--flatten", "-o", "json",
               "--kubeconfig", kubeconfig]
        if context:
            cmd += ["--context", context]
        cfg = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        cluster = cfg["clusters"][0]["cluster"]
        user = cfg["users"][0]["user"]
        url = urllib.parse.urlsplit(cluster["server"])
        if url.scheme != "https":
            sys.exit(f"faultproxy: upstream {cluster['server']} is not https")
        self.host = url.hostname
        self.port = url.port or 443

        def write(name, b64):
            path = os.path.join(workdir, name)
            with open(path, "wb") as f:
                f.write(base64.b64decode(b64))
            os.chmod(path, 0o600)
            return path

        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if cluster.get("insecure-skip-tls-verify"):
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif cluster.get("certificate-authority-data"):
            ctx.load_verify_locations(cafile=write("ca.crt", cluster["certificate-authority-data"]))
        if user.get("client-certificate-data"):
            ctx.load_cert_chain(
                write("client.crt", user["client-certificate-data"]),
                write("client.key", user["client-key-data"]),
            )
        self.token = user.get("token")
        self.ctx = ctx

    def connect(self):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=120)


def self_signed(workdir):
    cert, key = os.path.join(workdir, "tls.crt"), os.path.join(workdir, "tls.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=faultproxy",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultproxy"

    # Set on the class by main().
    state = None
    upstream = None
    silent = False
    tls = None
    stop = threading.Event()

    def setup(self):
        if self.tls is not None:
            # The handshake runs in this connection's thread, not in the accept loop.
            self.request.settimeout(30)
            self.request = self.tls.wrap_socket(self.request, server_side=True)
            self.request.settimeout(None)
        super().setup()
        self.conn = None

    def log_message(self, fmt, *args):  # quiet
        pass

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def drop(self):
        """Close the connection without a word."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def answer(self, code, body, headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def forward(self, body):
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Host"] = f"{self.upstream.host}:{self.upstream.port}"
        if self.upstream.token and "authorization" not in {k.lower() for k in headers}:
            headers["Authorization"] = f"Bearer {self.upstream.token}"
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        for attempt in (0, 1):
            fresh = self.conn is None
            if fresh:
                self.conn = self.upstream.connect()
            try:
                self.conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, resp.getheaders(), data
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if fresh or attempt == 1:
                    raise
        raise RuntimeError("unreachable")

    def control(self, path, body):
        if path == CONTROL_PREFIX + "stats" and self.command == "GET":
            return self.answer(200, json.dumps(self.state.stats()).encode(),
                               [("Content-Type", "application/json")])
        if path == CONTROL_PREFIX + "log" and self.command == "GET":
            with self.state.lock:
                data = json.dumps(self.state.log).encode()
            return self.answer(200, data, [("Content-Type", "application/json")])
        if path == CONTROL_PREFIX + "config" and self.command == "POST":
            try:
                self.state.configure(json.loads(body or b"{}"))
            except (ValueError, TypeError) as e:
                return self.answer(400, str(e).encode())
            return self.answer(200, json.dumps(self.state.stats()).encode(),
                               [("Content-Type", "application/json")])
        return self.answer(404, b"unknown control endpoint\n")

    def handle_any(self):
        body = self.read_body()
        if self.silent:
            # Never answer; hold the connection until the process ends.
            while not self.stop.wait(3600):
                pass
            return
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith(CONTROL_PREFIX):
            return self.control(url.path, body)
        t = time.time()
        fault = self.state.decide(self.command, url.path)
        if fault in ("429", "500", "503"):
            code = int(fault)
            extra = [("Retry-After", "1")] if code == 429 else []
            self.state.record(self.command, url.path, url.query, fault, code, t)
            self.close_connection = False
            return self.answer(code, status_body(code),
                               [("Content-Type", "application/json")] + extra)
        if fault == "drop-before":
            self.state.record(self.command, url.path, url.query, fault, None, t)
            return self.drop()
        try:
            status, headers, data = self.forward(body)
        except (http.client.HTTPException, OSError) as e:
            self.state.record(self.command, url.path, url.query, "upstream-error", None, t)
            return self.answer(502, f"faultproxy: upstream: {e}\n".encode())
        if fault == "drop-after":
            self.state.record(self.command, url.path, url.query, fault, status, t)
            return self.drop()
        self.state.record(self.command, url.path, url.query, "forward", status, t)
        # send_response() writes its own Server and Date.
        keep = [(k, v) for k, v in headers
                if k.lower() not in HOP_BY_HOP and k.lower() not in ("server", "date")]
        self.answer(status, data, keep)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):  # a client going away is not news
        pass


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--silent", action="store_true", help="accept, read, never answer")
    p.add_argument("--tls", action="store_true", help="serve HTTPS with a self-signed certificate")
    p.add_argument("--kubeconfig", help="upstream: kubeconfig file (forward mode)")
    p.add_argument("--context", help="upstream: context of --kubeconfig (default: current)")
    p.add_argument("--rate", type=float, default=0.0, help="fraction of DELETEs to fault")
    p.add_argument("--faults", default=",".join(FAULTS), help="comma-separated: " + ",".join(FAULTS))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-per-path", type=int, default=2)
    p.add_argument("--log", help="append every log entry to this file (JSON lines)")
    a = p.parse_args()

    faults = [f for f in a.faults.split(",") if f]
    bad = [f for f in faults if f not in FAULTS]
    if bad:
        p.error(f"unknown faults {bad}; known: {','.join(FAULTS)}")
    workdir = tempfile.mkdtemp(prefix="faultproxy-")
    try:
        Handler.silent = a.silent
        Handler.state = State(a.rate, faults, a.seed, a.max_per_path, a.log)
        if not a.silent:
            if not a.kubeconfig:
                p.error("--kubeconfig is needed unless --silent")
            Handler.upstream = Upstream(a.kubeconfig, a.context, workdir)
        if a.tls:
            Handler.tls = self_signed(workdir)
    finally:
        # Keys and certificates are loaded: leave nothing behind, even when killed.
        shutil.rmtree(workdir, ignore_errors=True)
    server = Server(("127.0.0.1", a.port), Handler)
    scheme = "https" if a.tls else "http"
    print(f"listening {scheme}://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
