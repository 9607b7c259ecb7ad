#!/usr/bin/env python3
"""Mail scenarios of the benchmark (bench/README.md, "Mail"), standard library only.

    bench/mail_bench.py [--bin target/release/portcullis] [--samples 400] [--drain 10000]

Starts the server on a fresh SQLite file with mail to an SMTP sink in this process, then:

1. timing: POST /auth/password/forgot for a known and for an unknown address, alternately in a
   random order, one keep-alive connection; the same for POST /auth/login with a wrong password
   for a known account and for an unknown email. Per pair: p10/p50/p90/p99 and the probability
   that a known-address answer is slower than an unknown one (0.5: indistinguishable), so the
   forgot-password distributions can be compared with login's. The mail limits are off here
   (a limited request does less work, for every address alike).
2. forgot rate: closed-loop forgot-password requests (known and unknown addresses) from 8
   connections for 10 s: requests per second.
3. drain: stops the server, queues --drain messages in the outbox with SQL, starts it again and
   times until the sink has them all: messages per second (target >= 500).

Prints a Markdown section for bench/RESULTS.md. Not a test: nothing here asserts a time.
"""

import argparse
import http.client
import json
import os
import random
import socket
import socketserver
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Sink(socketserver.ThreadingTCPServer):
    """Accepts every message (RFC 5321, just enough), counting them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), SinkSession)
        self.count = 0
        self.lock = threading.Lock()


class SinkSession(socketserver.StreamRequestHandler):
    def handle(self):
        w = self.wfile.write
        w(b"220 sink ESMTP\r\n")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.strip().upper()
            if cmd.startswith(b"EHLO"):
                w(b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
            elif cmd == b"DATA":
                w(b"354 go on\r\n")
                while True:
                    data = self.rfile.readline()
                    if not data or data == b".\r\n":
                        break
                with self.server.lock:
                    self.server.count += 1
                w(b"250 2.0.0 queued\r\n")
            elif cmd == b"QUIT":
                w(b"221 bye\r\n")
                return
            else:
                w(b"250 ok\r\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, db, smtp_port, log):
        self.port = free_port()
        mail = f'{{smtp_url="smtp://127.0.0.1:{smtp_port}",per_address_per_hour=0,per_client_address_per_hour=0}}'
        env = dict(os.environ, ROCKET_CONFIG=os.path.join(ROOT, "Rocket.toml"), ROCKET_PROFILE="release",
                   ROCKET_ADDRESS="127.0.0.1", ROCKET_PORT=str(self.port),
                   ROCKET_DATABASES=f'{{main={{url="{db}"}}}}', ROCKET_MAIL=mail,
                   ROCKET_AUTH="{throttle_account_failures=1000000,throttle_address_failures=1000000,"
                               "throttle_account_total_failures=1000000,registrations_per_address_per_hour=0}")
        self.proc = subprocess.Popen([binary, "serve"], env=env, stdout=log, stderr=log)
        for _ in range(600):
            try:
                if self.call("GET", "/health/ready")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                sys.exit("the server stopped; see its log")
            time.sleep(0.1)
        sys.exit("the server did not become ready")

    def connection(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def call(self, method, path, body=None, conn=None):
        conn = conn or self.connection()
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


def pct(sorted_ms, p):
    return sorted_ms[min(len(sorted_ms) - 1, int(p / 100 * len(sorted_ms)))]


def slower_probability(a, b):
    """P(a random sample of a > one of b), ties counting half (the Mann-Whitney U / n m)."""
    b = sorted(b)
    import bisect
    total = 0.0
    for x in a:
        lo, hi = bisect.bisect_left(b, x), bisect.bisect_right(b, x)
        total += lo + (hi - lo) / 2
    return total / (len(a) * len(b))


def timing(server, path, known, unknown, samples):
    conn = server.connection()
    times = {"known": [], "unknown": []}
    for _ in range(10):  # warm-up
        server.call("POST", path, known, conn)
        server.call("POST", path, unknown, conn)
    for _ in range(samples):
        pair = [("known", known), ("unknown", unknown)]
        random.shuffle(pair)
        for label, body in pair:
            start = time.perf_counter()
            status, _ = server.call("POST", path, body, conn)
            times[label].append((time.perf_counter() - start) * 1000)
            if status >= 500 or status == 429:
                sys.exit(f"{path} answered {status}")
    rows = []
    for label in ("known", "unknown"):
        t = sorted(times[label])
        rows.append(f"| `{path}` | {label} | {pct(t, 10):.2f} | {pct(t, 50):.2f} | {pct(t, 90):.2f} | {pct(t, 99):.2f} |")
    return rows, slower_probability(times["known"], times["unknown"])


def forgot_rate(server, seconds=10, connections=8):
    done, stop = [0] * connections, time.perf_counter() + seconds

    def run(i):
        conn = server.connection()
        n = 0
        while time.perf_counter() < stop:
            email = "known@example.com" if n % 2 == 0 else f"nobody{i}-{n}@example.com"
            status, _ = server.call("POST", "/auth/password/forgot", {"email": email}, conn)
            if status != 202:
                sys.exit(f"forgot answered {status}")
            n += 1
        done[i] = n

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - start)


def queue_messages(db, n):
    now = int(time.time())
    rows = []
    for i in range(n):
        mid = str(uuid.uuid4())
        rows.append((mid, f"<{mid}@bench.example>", f"user{i}@example.com", "password_changed", now))
    with sqlite3.connect(db) as c:
        c.executemany("INSERT INTO outbox (id, message_id, recipient, kind, next_attempt_at, created_at) "
                      "VALUES (?, ?, ?, ?, ?, ?)", [r + (r[4],) for r in rows])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=os.path.join(ROOT, "target/release/portcullis"))
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--drain", type=int, default=10000)
    args = parser.parse_args()
    sink = Sink()
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    work = tempfile.mkdtemp(prefix="portcullis-mail-bench-")
    db = os.path.join(work, "bench.sqlite")
    log = open(os.path.join(work, "server.log"), "wb")
    server = Server(args.bin, db, sink.server_address[1], log)
    try:
        status, _ = server.call("POST", "/auth/register", {"email": "known@example.com", "password": "a long bench password"})
        assert status == 201, status
        out = ["| request | address | p10 ms | p50 ms | p90 ms | p99 ms |", "|---|---|---|---|---|---|"]
        forgot_rows, forgot_p = timing(server, "/auth/password/forgot", {"email": "known@example.com"},
                                       {"email": "nobody@example.com"}, args.samples)
        login_rows, login_p = timing(server, "/auth/login", {"email": "known@example.com", "password": "wrong password"},
                                     {"email": "nobody@example.com", "password": "wrong password"}, args.samples)
        out += forgot_rows + login_rows
        out.append("")
        out.append(f"P(known slower than unknown): forgot-password {forgot_p:.2f}, login {login_p:.2f} "
                   f"(0.50: indistinguishable; {args.samples} pairs each)")
        rate = forgot_rate(server)
        out.append(f"\nforgot-password: {rate:.0f} requests/s (8 connections, 10 s, half known addresses)")
        server.stop()
        time.sleep(1)
        with sqlite3.connect(db) as c:
            c.execute("DELETE FROM outbox")
        before = sink.count
        queue_messages(db, args.drain)
        start = time.perf_counter()
        server = Server(args.bin, db, sink.server_address[1], log)
        while sink.count - before < args.drain:
            if time.perf_counter() - start > 600:
                sys.exit(f"drain: {sink.count - before} of {args.drain} after 600 s")
            time.sleep(0.02)
        secs = time.perf_counter() - start
        out.append(f"drain: {args.drain} queued messages in {secs:.1f} s from one instance: "
                   f"{args.drain / secs:.0f} messages/s, start-up included (target >= 500)")
        print("\n".join(out))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
