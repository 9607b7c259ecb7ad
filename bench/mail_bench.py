#!/usr/bin/env python3
"""Mail scenarios of the benchmark (bench/README.md, "Mail"), standard library only.

    bench/mail_bench.py [--bin target/release/portcullis] [--samples 400] [--drain 10000]
                        [--only timing,login,rate,drain] [--postgres postgres://USER@HOST:PORT/DB]

Starts the server on a fresh SQLite file (or, with --postgres, a fresh database made with psql on
that server and dropped at the end) with mail to an SMTP sink, then:

1. timing: POST /auth/password/forgot for a known and for an unknown address, alternately in a
   random order, one keep-alive connection; the same for POST /auth/login with a wrong password
   for a known account and for an unknown email. Per pair: p10/p50/p90/p99 and the probability
   that a known-address answer is slower than an unknown one (0.5: indistinguishable; with its
   95% interval, Hanley & McNeil 1982), so the forgot-password distributions can be compared
   with login's. The mail limits are off here (a limited request does less work, for every
   address alike).
2. forgot rate: closed-loop forgot-password requests (known and unknown addresses) from 8
   connections for 10 s: requests per second.
3. drain: stops the server, queues --drain messages in the outbox with SQL, starts it again and
   times until the sink has them all: messages per second (target >= 500), start-up included
   and from the first message to the last.

The SMTP sink runs in a process of its own: in this one it would take the interpreter lock from
the timing loop whenever a known address's mail arrives, and be timed as the server's work.

Prints a Markdown section for bench/RESULTS.md. Not a test: nothing here asserts a time.
"""

import argparse
import atexit
import http.client
import json
import math
import multiprocessing
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
    """Accepts every message (RFC 5321, just enough), counting them in shared memory."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, count, first):
        super().__init__(("127.0.0.1", 0), SinkSession)
        self.count, self.first = count, first


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
                w(b"250-sink\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 SMTPUTF8\r\n")
            elif cmd == b"DATA":
                w(b"354 go on\r\n")
                while True:
                    data = self.rfile.readline()
                    if not data or data == b".\r\n":
                        break
                with self.server.count.get_lock():
                    if self.server.count.value == 0:
                        self.server.first.value = time.time()
                    self.server.count.value += 1
                w(b"250 2.0.0 queued\r\n")
            elif cmd == b"QUIT":
                w(b"221 bye\r\n")
                return
            else:
                w(b"250 ok\r\n")


def run_sink(count, first, port):
    sink = Sink(count, first)
    port.value = sink.server_address[1]
    sink.serve_forever()


class SinkProcess:
    """The sink, in a process of its own; `count` and `first` (the time of the first message
    since the last reset) are shared memory."""

    def __init__(self):
        self.count = multiprocessing.Value("q", 0)
        self.first = multiprocessing.Value("d", 0.0)
        port = multiprocessing.Value("i", 0)
        self.proc = multiprocessing.Process(target=run_sink, args=(self.count, self.first, port), daemon=True)
        self.proc.start()
        while port.value == 0:
            time.sleep(0.01)
        self.port = port.value

    def received(self):
        return self.count.value

    def reset(self):
        with self.count.get_lock():
            self.count.value = 0
            self.first.value = 0.0


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


def auc_interval(p, n, m):
    """The 95% interval of a Mann-Whitney probability p from n and m samples (Hanley & McNeil)."""
    q1, q2 = p / (2 - p), 2 * p * p / (1 + p)
    se = math.sqrt((p * (1 - p) + (n - 1) * (q1 - p * p) + (m - 1) * (q2 - p * p)) / (n * m))
    return max(0.0, p - 1.96 * se), min(1.0, p + 1.96 * se)


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
    p = slower_probability(times["known"], times["unknown"])
    return rows, (p,) + auc_interval(p, len(times["known"]), len(times["unknown"]))


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


def psql(url, sql):
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql], check=True, stdout=subprocess.DEVNULL)


def queue_messages(db, n):
    now = int(time.time())
    if db.startswith("postgres"):
        psql(db, "DELETE FROM outbox; INSERT INTO outbox (id, message_id, recipient, kind, next_attempt_at, created_at) "
                 f"SELECT u, '<' || u || '@bench.example>', 'user' || i || '@example.com', 'password_changed', {now}, {now} "
                 f"FROM (SELECT gen_random_uuid() AS u, i FROM generate_series(1, {n}) AS i) AS q")
        return
    rows = []
    for i in range(n):
        mid = str(uuid.uuid4())
        rows.append((mid, f"<{mid}@bench.example>", f"user{i}@example.com", "password_changed", now))
    with sqlite3.connect(db) as c:
        c.execute("DELETE FROM outbox")
        c.executemany("INSERT INTO outbox (id, message_id, recipient, kind, next_attempt_at, created_at) "
                      "VALUES (?, ?, ?, ?, ?, ?)", [r + (r[4],) for r in rows])


class Progress(list):
    """The report's lines, each printed as soon as it is known."""

    def append(self, line):
        super().append(line)
        print(line, flush=True)

    def __iadd__(self, lines):
        for line in lines:
            self.append(line)
        return self


def load():
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def drain(args, sink, db, log, out):
    queue_messages(db, args.drain)
    sink.reset()
    start, load_before = time.time(), load()
    server = Server(args.bin, db, sink.port, log)
    while sink.received() < args.drain:
        if time.time() - start > 600:
            sys.exit(f"drain: {sink.received()} of {args.drain} after 600 s")
        time.sleep(0.01)
    end = time.time()
    server.stop()
    steady = (args.drain - 1) / max(end - sink.first.value, 1e-9)
    out.append(f"drain: {args.drain} queued messages in {end - start:.1f} s from one instance: "
               f"{args.drain / (end - start):.0f} messages/s start-up included, {steady:.0f} messages/s "
               f"from the first message to the last (target >= 500; load average {load_before} before, "
               f"{load()} after)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=os.path.join(ROOT, "target/release/portcullis"))
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--drain", type=int, default=10000)
    parser.add_argument("--only", default="timing,login,rate,drain",
                        help="comma-separated: timing (forgot-password), login (its reference), rate, drain")
    parser.add_argument("--postgres", help="a PostgreSQL server URL (its database is used only to make a fresh one)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    sink = SinkProcess()
    work = tempfile.mkdtemp(prefix="portcullis-mail-bench-")
    db = os.path.join(work, "bench.sqlite")
    if args.postgres:
        name = f"portcullis_mail_bench_{os.getpid()}"
        psql(args.postgres, f"CREATE DATABASE {name}")
        atexit.register(psql, args.postgres, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        db = args.postgres.rsplit("/", 1)[0] + "/" + name
    print(f"backend: {'PostgreSQL' if args.postgres else 'SQLite'}", flush=True)
    log = open(os.path.join(work, "server.log"), "wb")
    out = Progress()
    server = Server(args.bin, db, sink.port, log)
    try:
        status, _ = server.call("POST", "/auth/register", {"email": "known@example.com", "password": "a long bench password"})
        assert status == 201, status
        if "timing" in only:
            load_before = load()
            out += ["| request | address | p10 ms | p50 ms | p90 ms | p99 ms |", "|---|---|---|---|---|---|"]
            forgot_rows, forgot_p = timing(server, "/auth/password/forgot", {"email": "known@example.com"},
                                           {"email": "nobody@example.com"}, args.samples)
            login_rows, login_p = [], (float("nan"),) * 3
            if "login" in only:
                login_rows, login_p = timing(server, "/auth/login",
                                             {"email": "known@example.com", "password": "wrong password"},
                                             {"email": "nobody@example.com", "password": "wrong password"},
                                             args.samples)
            out += forgot_rows + login_rows
            out.append("")
            out.append("P(known slower than unknown): forgot-password {:.2f} (95% {:.2f}-{:.2f}), "
                       "login {:.2f} (95% {:.2f}-{:.2f}); 0.50: indistinguishable; ".format(*forgot_p, *login_p)
                       + f"{args.samples} interleaved pairs each; load average {load_before} before, {load()} after")
        if "rate" in only:
            rate = forgot_rate(server)
            out.append(f"\nforgot-password: {rate:.0f} requests/s (8 connections, 10 s, half known addresses; "
                       f"load average {load()})")
        server.stop()
        if "drain" in only:
            time.sleep(1)
            drain(args, sink, db, log, out)
    finally:
        if server.proc.poll() is None:
            server.stop()


if __name__ == "__main__":
    main()
