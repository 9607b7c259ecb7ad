#!/usr/bin/env python3
"""Black-box check of a running Portcullis against the HTTP contract (version 2),
with the real client libraries: authlib, PyJWT, pyotp, prometheus_client.

Environment:
  BASE   base URL of the main server (default http://127.0.0.1:18400)
  PORTCULLIS_BIN  the binary (for the CLI and for auxiliary servers)
  MAIN_DB  the SQLite file of the main server (the CLI writes to it)
  AUX_PORT_BASE  first port for auxiliary servers (default 18460)
  ONLY   comma-separated section names to run (default: all)

Prints PASS/FAIL/NOTE lines; exits 1 if any FAIL.
"""
import base64
import concurrent.futures as cf
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid

import httpx
import jwt
import pyotp
import requests
from requests.adapters import HTTPAdapter
from authlib.integrations.requests_client import OAuth2Session
from authlib.common.errors import AuthlibBaseError
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from prometheus_client.parser import text_string_to_metric_families

BASE = os.environ.get("BASE", "http://127.0.0.1:18400").rstrip("/")
BIN = os.environ.get("PORTCULLIS_BIN", os.path.join(os.path.dirname(os.path.abspath(__file__)), "portcullis"))
MAIN_DB = os.environ.get("MAIN_DB")
AUX_PORT = int(os.environ.get("AUX_PORT_BASE", "18460"))
ONLY = set(filter(None, os.environ.get("ONLY", "").split(",")))

RESULTS = []
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]00:00)$")


def _short(r):
    if r is None:
        return "<no response>"
    hdrs = {k: v for k, v in r.headers.items() if k.lower() in (
        "content-type", "www-authenticate", "retry-after", "cache-control")}
    body = r.text
    if len(body) > 400:
        body = body[:400] + "..."
    return f"{r.status_code} {hdrs} {body}"


def check(name, cond, detail=""):
    RESULTS.append(("PASS" if cond else "FAIL", name, detail))
    line = ("PASS " if cond else "FAIL ") + name
    if not cond and detail:
        line += "\n      :: " + str(detail)
    print(line, flush=True)
    return bool(cond)


def note(name, detail=""):
    RESULTS.append(("NOTE", name, detail))
    print("NOTE " + name + (("\n      :: " + str(detail)) if detail else ""), flush=True)


class SourceAddressAdapter(HTTPAdapter):
    def __init__(self, addr, **kw):
        self._addr = addr
        super().__init__(**kw)

    def init_poolmanager(self, *a, **kw):
        kw["source_address"] = (self._addr, 0)
        super().init_poolmanager(*a, **kw)


_sessions = {}
_sess_lock = threading.Lock()


def http(addr="127.0.0.1"):
    """A requests.Session bound to a source address (one per thread and address)."""
    key = (addr, threading.get_ident())
    with _sess_lock:
        s = _sessions.get(key)
        if s is None:
            s = requests.Session()
            ad = SourceAddressAdapter(addr)
            s.mount("http://", ad)
            _sessions[key] = s
    return s


def call(method, path, base=None, token=None, src="127.0.0.1", headers=None, **kw):
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    url = (base or BASE) + path
    return http(src).request(method, url, headers=h, timeout=30, **kw)


def body(r):
    try:
        return r.json()
    except Exception:
        return None


def is_err(r, status, code):
    b = body(r)
    return (r.status_code == status and isinstance(b, dict) and b.get("error") == code
            and isinstance(b.get("error_description"), str) and b.get("error_description") != ""
            and r.headers.get("content-type", "").startswith("application/json"))


def check_err(name, r, status, code, extra=True):
    return check(name, is_err(r, status, code) and extra, f"expected {status} {code}; got {_short(r)}")


def pw():
    return "Pw-" + uuid.uuid4().hex[:16] + "-x"


def email(prefix="u"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def register(base=None, e=None, p=None, src="127.0.0.1"):
    e = e or email()
    p = p or pw()
    r = call("POST", "/auth/register", base=base, json={"email": e, "password": p}, src=src)
    assert r.status_code == 201, _short(r)
    return e, p, r.json()


def login(e, p, base=None, src="127.0.0.1", **kw):
    return call("POST", "/auth/login", base=base, json={"email": e, "password": p}, src=src, **kw)


def login_ok(e, p, base=None, src="127.0.0.1"):
    r = login(e, p, base=base, src=src)
    assert r.status_code == 200, _short(r)
    return r.json()


def cli(args, db, stdin=None, extra_env=None):
    env = dict(os.environ)
    env["ROCKET_DATABASES"] = '{main={url="%s"}}' % db
    if extra_env:
        env.update(extra_env)
    return subprocess.run([BIN] + args, input=stdin, capture_output=True, text=True, env=env, timeout=60,
                          cwd=os.path.dirname(db) if db.startswith("/") else "/tmp")


def cli_user(db, e, p, roles=(), extra_env=None):
    args = ["user", "create", "--email", e, "--password-stdin"]
    for r in roles:
        args += ["--role", r]
    out = cli(args, db, stdin=p + "\n", extra_env=extra_env)
    assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout


def cli_client(db, name, perms, extra_env=None):
    args = ["client", "create", "--name", name]
    for p in perms:
        args += ["--permission", p]
    out = cli(args, db, extra_env=extra_env)
    assert out.returncode == 0, out.stderr + out.stdout
    txt = out.stdout
    cid = re.search(r"client_id\W+([A-Za-z0-9_\-\.]+)", txt)
    sec = re.search(r"client_secret\W+([A-Za-z0-9_\-\.~+/=]+)", txt)
    return cid.group(1), sec.group(1), txt


# ---------------------------------------------------------------- auxiliary servers
class Aux:
    """A second server on its own fresh SQLite file with its own configuration."""
    n = 0

    def __init__(self, auth_cfg, extra_env=None, db_url=None):
        Aux.n += 1
        self.port = AUX_PORT + Aux.n
        self.dir = tempfile.mkdtemp(prefix="rc-aux-")
        self.db = db_url or os.path.join(self.dir, "aux.db")
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update({
            "ROCKET_PORT": str(self.port),
            "ROCKET_ADDRESS": "127.0.0.1",
            "ROCKET_DATABASES": '{main={url="%s"}}' % self.db,
            "ROCKET_AUTH": auth_cfg,
        })
        if extra_env:
            env.update(extra_env)
        self.env = env
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen([BIN, "serve"], cwd=self.dir, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        for _ in range(200):
            try:
                if requests.get(self.base + "/health/ready", timeout=1).status_code == 200:
                    break
            except Exception:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("aux server died: " + open(os.path.join(self.dir, "server.log")).read())
            time.sleep(0.05)

    def auth_env(self):
        return {"ROCKET_AUTH": self.env["ROCKET_AUTH"]}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- shared state
STATE = {}


def admin_token():
    if "admin" not in STATE:
        e, p = email("admin"), pw()
        cli_user(MAIN_DB, e, p, roles=["admin"])
        tok = login_ok(e, p)
        STATE["admin"] = (e, p, tok)
    return STATE["admin"][2]["access_token"]


def metadata():
    if "meta" not in STATE:
        STATE["meta"] = requests.get(BASE + "/.well-known/oauth-authorization-server", timeout=10).json()
    return STATE["meta"]


def jwk_client():
    if "jwkc" not in STATE:
        STATE["jwkc"] = jwt.PyJWKClient(metadata()["jwks_uri"])
    return STATE["jwkc"]


def decode(tok, **kw):
    key = jwk_client().get_signing_key_from_jwt(tok)
    return jwt.decode(tok, key.key, algorithms=["EdDSA"], audience="portcullis", issuer=BASE,
                      options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]}, **kw)


# ================================================================= sections
def sec_ops():
    r = call("GET", "/health/live")
    check("health/live 200 {status:ok}", r.status_code == 200 and body(r) == {"status": "ok"}, _short(r))
    r = call("GET", "/health/ready")
    check("health/ready 200", r.status_code == 200, _short(r))
    r = call("GET", "/no/such/route")
    check_err("unknown route -> 404 not_found JSON", r, 404, "not_found")
    r = call("POST", "/no/such/route", data="x")
    check_err("unknown POST route -> 404 not_found JSON", r, 404, "not_found")
    r = call("GET", "/openapi.json")
    ok = r.status_code == 200 and isinstance(body(r), dict) and str(body(r).get("openapi", "")).startswith("3.")
    check("GET /openapi.json is OpenAPI 3.x", ok, _short(r))
    if ok:
        paths = set(body(r).get("paths", {}).keys())
        want = ["/auth/register", "/auth/login", "/auth/refresh", "/auth/logout", "/auth/logout-all",
                "/auth/sessions", "/auth/sessions/{id}", "/users/me", "/users/me/password", "/admin/users",
                "/admin/users/{id}", "/admin/users/{id}/roles", "/admin/users/{id}/sessions", "/admin/roles",
                "/admin/roles/{name}", "/admin/audit", "/oauth/token", "/oauth/revoke", "/oauth/introspect",
                "/.well-known/oauth-authorization-server", "/.well-known/jwks.json", "/admin/clients",
                "/admin/clients/{client_id}", "/admin/clients/{client_id}/secret", "/auth/mfa/totp",
                "/auth/mfa/totp/confirm", "/auth/mfa/recovery-codes", "/auth/mfa/verify",
                "/admin/users/{id}/mfa", "/health/live", "/health/ready", "/metrics"]
        norm = {re.sub(r"\{[^}]+\}", "{}", p) for p in paths}
        missing = [w for w in want if re.sub(r"\{[^}]+\}", "{}", w) not in norm]
        check("openapi.json documents every contract route", not missing, f"missing: {missing}")
    r = call("GET", "/docs")
    ok = r.status_code == 200 and "text/html" in r.headers.get("content-type", "")
    ext = re.findall(r"""(?:src|href)=["'](https?://[^"']+)""", r.text) if ok else []
    check("GET /docs HTML page without external resources", ok and not ext, f"{_short(r)[:200]} external={ext}")
    # X-Request-Id
    r = call("GET", "/health/live", headers={"X-Request-Id": "abc-123"})
    check("X-Request-Id echoed", r.headers.get("x-request-id") == "abc-123", dict(r.headers))


def sec_metadata_jwks():
    m = metadata()
    for k in ("issuer", "token_endpoint", "jwks_uri", "revocation_endpoint", "introspection_endpoint",
              "grant_types_supported", "token_endpoint_auth_methods_supported"):
        check(f"metadata has {k}", k in m, m)
    check("metadata grant_types_supported has client_credentials",
          "client_credentials" in m.get("grant_types_supported", []), m.get("grant_types_supported"))
    check("metadata auth methods include client_secret_basic/post",
          {"client_secret_basic", "client_secret_post"} <= set(m.get("token_endpoint_auth_methods_supported", [])), m)
    try:
        AuthorizationServerMetadata(m).validate()
        check("authlib AuthorizationServerMetadata.validate()", True)
    except Exception as ex:
        # authlib wants an https issuer (RFC 8414 §2); the quick start's is http on loopback.
        check("authlib AuthorizationServerMetadata.validate() (only the http scheme may fail)",
              "https" in repr(ex), repr(ex))
    check("metadata issuer is the base URL (RFC 8414 §3.3)", m.get("issuer") == BASE, m.get("issuer"))
    try:
        AuthorizationServerMetadata(dict(m, issuer="https://auth.example.com")).validate()
        check("authlib metadata validate() apart from issuer", True)
    except Exception as ex:
        note("authlib metadata validate() fails even with an https issuer (response_types_supported is [])", repr(ex))
    r = call("GET", "/.well-known/jwks.json")
    keys = body(r).get("keys", []) if r.status_code == 200 else []
    check("JWKS has one or more OKP Ed25519 keys with kid",
          keys and all(k.get("kty") == "OKP" and k.get("crv") == "Ed25519" and k.get("kid") for k in keys), _short(r))
    try:
        jwt.PyJWKSet.from_dict(body(r))
        check("PyJWKSet parses the JWKS", True)
    except Exception as ex:
        check("PyJWKSet parses the JWKS", False, repr(ex))


def sec_accounts():
    # register
    e = email("Reg")
    p = pw()
    r = call("POST", "/auth/register", json={"email": "  " + e.upper() + " ", "password": p})
    b = body(r) or {}
    check("register 201", r.status_code == 201, _short(r))
    check("user object fields", set(b) >= {"id", "email", "roles", "disabled", "created_at"} and
          UUID_RE.match(b.get("id", "")) and b.get("roles") == ["user"] and b.get("disabled") is False and
          RFC3339_RE.match(b.get("created_at", "")), b)
    check("user object has mfa:false", b.get("mfa") is False, b)
    check("email trimmed and lower-cased", b.get("email") == e.lower(), b)
    check("no password hash in user object", not any("hash" in k or "password" in k for k in b) and "$argon2" not in r.text, b)
    uid = b.get("id")
    r = call("POST", "/auth/register", json={"email": e.upper(), "password": pw()})
    check_err("duplicate email (case-insensitive) -> 409 conflict", r, 409, "conflict")
    r = call("POST", "/auth/register", json={"email": "not-an-email", "password": pw()})
    check_err("bad email -> 422 invalid_request", r, 422, "invalid_request")
    r = call("POST", "/auth/register", json={"email": email(), "password": "Ab1-xyz"})
    check_err("7-char password -> 422", r, 422, "invalid_request", "password" in r.text)
    r = call("POST", "/auth/register", json={"email": email(), "password": "x" * 129})
    check_err("129-char password -> 422", r, 422, "invalid_request", "password" in r.text)
    r = call("POST", "/auth/register", json={"email": email(), "password": "Ab1-" + "y" * 124})
    check("128-char password accepted (201)", r.status_code == 201, _short(r))
    r = call("POST", "/auth/register", json={"email": email(), "password": "Ab1-Ab1-"})
    check("8-char uncommon password accepted (201)", r.status_code == 201, _short(r))
    for common in ("password", "PassWord1", "iloveyou", "12345678", "qwertyuiop", "sunshine", "football1", "Monkey123"):
        r = call("POST", "/auth/register", json={"email": email(), "password": common})
        check_err(f"common password {common!r} -> 422 naming password", r, 422, "invalid_request",
                  "password" in (body(r) or {}).get("error_description", "").lower())
    r = call("POST", "/auth/register", json={"email": email()})
    check_err("missing field -> 400 invalid_request", r, 400, "invalid_request")
    r = call("POST", "/auth/register", data="{not json", headers={"Content-Type": "application/json"})
    check_err("malformed JSON -> 400 invalid_request", r, 400, "invalid_request")
    r = call("POST", "/auth/register", data=json.dumps({"email": email(), "password": pw()}),
             headers={"Content-Type": "text/plain"})
    check_err("wrong content type -> 400 invalid_request", r, 400, "invalid_request")
    r = call("POST", "/auth/register", data=urllib.parse.urlencode({"email": email(), "password": pw()}),
             headers={"Content-Type": "application/x-www-form-urlencoded"})
    check_err("form body to JSON endpoint -> 400 invalid_request", r, 400, "invalid_request")
    r = call("POST", "/auth/register", json={"email": email(), "password": pw(), "pad": "x" * 70000})
    note("70 KB JSON body (no Rocket.toml: 64 KiB limit only in the shipped Rocket.toml)", _short(r)[:100])
    r = call("POST", "/auth/register", json={"email": email(), "password": pw(), "pad": "x" * 2000000})
    check_err("2 MB JSON body -> 413 payload_too_large", r, 413, "payload_too_large")
    r = call("POST", "/oauth/token", data={"grant_type": "password", "username": "x", "password": "y" * 70000})
    check_err("70 KB form body -> 413 payload_too_large", r, 413, "payload_too_large")
    # hostile input
    hostile = {
        "NUL in email": '{"email":"a\\u0000b@example.com","password":"%s"}' % pw(),
        "lone surrogate in email": '{"email":"a\\ud800b@example.com","password":"%s"}' % pw(),
        "NUL in password": '{"email":"%s","password":"abc\\u0000defghij"}' % email(),
        "lone surrogate in password": '{"email":"%s","password":"abc\\udc00defghij"}' % email(),
        "255-char email": json.dumps({"email": "a" * 243 + "@example.com", "password": pw()}),
        "64-char local part over": json.dumps({"email": "b" * 300 + "@example.com", "password": pw()}),
    }
    for k, raw in hostile.items():
        r = call("POST", "/auth/register", data=raw.encode(), headers={"Content-Type": "application/json"})
        if "password" in k:
            note(f"register hostile ({k}) (password is only hashed, never stored)", _short(r)[:120])
            r = call("POST", "/auth/login", data=raw.encode(), headers={"Content-Type": "application/json"}, src="127.0.0.9")
            note(f"login hostile ({k})", _short(r)[:60])
            continue
        check(f"register hostile ({k}) -> 4xx JSON", 400 <= r.status_code < 500 and body(r) and "error" in body(r), _short(r))
        r = call("POST", "/auth/login", data=raw.encode(), headers={"Content-Type": "application/json"},
                 src="127.0.0.9")
        if "email" in k:
            check_err(f"login hostile ({k}) -> 401 invalid_credentials", r, 401, "invalid_credentials")
        else:
            check(f"login hostile ({k}) -> 4xx", 400 <= r.status_code < 500, _short(r))

    # login
    e, p, u = register()
    r = login(e.upper(), p)
    b = body(r) or {}
    check("login (upper-cased email) 200", r.status_code == 200, _short(r))
    check("token response fields", set(b) >= {"access_token", "token_type", "expires_in", "refresh_token",
                                              "refresh_expires_in", "session_id"} and b.get("token_type") == "Bearer"
          and b.get("expires_in") == 900 and b.get("refresh_expires_in") == 1209600 and UUID_RE.match(b.get("session_id", "")), b)
    check("login response Cache-Control: no-store", "no-store" in r.headers.get("cache-control", ""), dict(r.headers))
    rt = b.get("refresh_token", "")
    check("refresh token URL-safe and >= 43 chars", re.match(r"^[A-Za-z0-9_\-]{43,}$", rt or "") is not None, rt)
    tok = b["access_token"]
    hdr = jwt.get_unverified_header(tok)
    check("access token header typ at+jwt, kid, alg EdDSA", hdr.get("typ") == "at+jwt" and hdr.get("kid") and
          hdr.get("alg") == "EdDSA", hdr)
    try:
        c = decode(tok)
        check("PyJWT verifies access token via PyJWKClient(jwks_uri) EdDSA/aud/iss", True)
        check("claims iss aud sub sid jti iat exp roles", c.get("sub") == u["id"] and c.get("sid") == b["session_id"]
              and c.get("roles") == ["user"] and c["exp"] - c["iat"] == 900 and isinstance(c.get("jti"), str), c)
        check("amr == ['pwd'] after password login", c.get("amr") == ["pwd"], c)
    except Exception as ex:
        check("PyJWT verifies access token via PyJWKClient(jwks_uri) EdDSA/aud/iss", False, repr(ex))

    # wrong password vs unknown email
    r1 = login(e, "wrong-" + p, src="127.0.0.8")
    r2 = login(email(), "wrong-" + p, src="127.0.0.8")
    check_err("wrong password -> 401 invalid_credentials", r1, 401, "invalid_credentials")
    check("unknown email answers identically to wrong password", r1.status_code == r2.status_code and
          r1.json() == r2.json(), f"{_short(r1)} VS {_short(r2)}")
    t1, t2 = [], []
    for i in range(4):
        e2, p2, _ = register()
        s = time.perf_counter(); login(e2, "nope-" + p2, src="127.0.0.7"); t1.append(time.perf_counter() - s)
        s = time.perf_counter(); login(email(), "nope-" + p2, src="127.0.0.7"); t2.append(time.perf_counter() - s)
    m1, m2 = statistics.median(t1), statistics.median(t2)
    check("timing unknown vs wrong password within noise", abs(m1 - m2) < max(0.5 * max(m1, m2), 0.01),
          f"wrong-pw median {m1*1000:.1f} ms, unknown {m2*1000:.1f} ms")

    # /users/me
    r = call("GET", "/users/me", token=tok)
    check("GET /users/me 200 user object", r.status_code == 200 and body(r).get("id") == u["id"], _short(r))
    check("/users/me Cache-Control no-store", "no-store" in r.headers.get("cache-control", ""), dict(r.headers))
    r = call("GET", "/users/me")
    check_err("no token -> 401 invalid_token", r, 401, "invalid_token")
    check("no token -> WWW-Authenticate: Bearer (no error attr)",
          r.headers.get("www-authenticate", "").strip() == "Bearer", r.headers.get("www-authenticate"))
    for label, bad in [("garbage", "abc.def.ghi"), ("refresh token as bearer", rt),
                       ("tampered signature", tok[:-4] + ("AAAA" if not tok.endswith("AAAA") else "BBBB")),
                       ("alg none", jwt.encode(jwt.decode(tok, options={"verify_signature": False}), None,
                                               algorithm="none", headers={"typ": "at+jwt", "kid": hdr["kid"]}))]:
        r = call("GET", "/users/me", token=bad)
        wa = r.headers.get("www-authenticate", "")
        check_err(f"{label} -> 401 invalid_token", r, 401, "invalid_token")
        check(f"{label} -> WWW-Authenticate Bearer error=\"invalid_token\", error_description",
              wa.startswith("Bearer") and 'error="invalid_token"' in wa and "error_description=" in wa, wa)
    r = call("GET", "/users/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    check("Basic credentials at bearer endpoint -> 401", r.status_code == 401 and r.headers.get("www-authenticate", "").startswith("Bearer"), _short(r))
    r = call("GET", "/users/me", headers={"Authorization": "bearer " + tok})
    check("lower-case 'bearer' scheme accepted (RFC 7235 case-insensitive)", r.status_code == 200, _short(r))

    # sessions list
    b2 = login_ok(e, p)
    r = call("GET", "/auth/sessions", token=tok)
    ss = (body(r) or {}).get("sessions", [])
    check("GET /auth/sessions 200 with fields", r.status_code == 200 and ss and all(
        set(s) >= {"id", "created_at", "last_used_at", "expires_at", "user_agent", "current"} for s in ss), _short(r))
    cur = [s for s in ss if s.get("current")]
    check("exactly one session current == this token's", len(cur) == 1 and cur[0]["id"] == b["session_id"], ss)
    check("sessions Cache-Control no-store", "no-store" in r.headers.get("cache-control", ""), dict(r.headers))
    r = call("GET", "/auth/sessions?limit=1&offset=0", token=tok)
    check("sessions limit=1", r.status_code == 200 and len(body(r)["sessions"]) == 1, _short(r))
    r = call("GET", "/auth/sessions?limit=1000", token=tok)
    note("sessions limit=1000 (contract: at most 200)", _short(r)[:160])
    # other user's session -> 404
    e3, p3, _ = register()
    b3 = login_ok(e3, p3)
    r = call("DELETE", f"/auth/sessions/{b2['session_id']}", token=b3["access_token"])
    check_err("DELETE another user's session -> 404 not_found", r, 404, "not_found")
    r = call("DELETE", f"/auth/sessions/{b2['session_id']}", token=tok)
    check("DELETE own session -> 204", r.status_code == 204, _short(r))
    r = call("GET", "/users/me", token=b2["access_token"])
    check_err("access token of deleted session -> 401 invalid_token at once", r, 401, "invalid_token")
    r = call("DELETE", f"/auth/sessions/{b2['session_id']}", token=tok)
    check("DELETE already-ended session -> 204 or 404", r.status_code in (204, 404), _short(r))
    r = call("DELETE", f"/auth/sessions/not-a-uuid", token=tok)
    check("DELETE /auth/sessions/not-a-uuid -> 4xx JSON", 400 <= r.status_code < 500 and body(r) and "error" in body(r), _short(r))
    r = call("POST", "/auth/refresh", json={"refresh_token": b2["refresh_token"]})
    check_err("refresh of deleted session -> 401 invalid_grant", r, 401, "invalid_grant")

    # password change
    b4 = login_ok(e, p)
    r = call("PUT", "/users/me/password", token=tok, json={"current_password": "wrong" + p, "new_password": pw()},
             src="127.0.0.6")
    check_err("password change with wrong current -> 401 invalid_credentials", r, 401, "invalid_credentials")
    r = call("PUT", "/users/me/password", token=tok, json={"current_password": p, "new_password": "password1"})
    check_err("password change to common password -> 422", r, 422, "invalid_request")
    r = call("PUT", "/users/me/password", token=tok, json={"current_password": p, "new_password": "short"})
    check_err("password change to short password -> 422", r, 422, "invalid_request")
    newp = pw()
    r = call("PUT", "/users/me/password", token=tok, json={"current_password": p, "new_password": newp})
    check("password change 204", r.status_code == 204, _short(r))
    r = call("GET", "/users/me", token=b4["access_token"])
    check_err("other session's access token 401 after password change", r, 401, "invalid_token")
    r = call("POST", "/auth/refresh", json={"refresh_token": b4["refresh_token"]})
    check_err("other session's refresh token 401 invalid_grant after password change", r, 401, "invalid_grant")
    r = call("GET", "/users/me", token=tok)
    check("current session survives password change", r.status_code == 200, _short(r))
    r = login(e, p, src="127.0.0.6")
    check_err("old password refused", r, 401, "invalid_credentials")
    p = newp
    # logout with refresh_token body, and {}
    r = call("POST", "/auth/logout", token=tok, json={})
    check("logout {} -> 204", r.status_code == 204, _short(r))
    r = call("GET", "/users/me", token=tok)
    check_err("after logout access token 401 invalid_token", r, 401, "invalid_token")
    check("after logout 401 WWW-Authenticate error=invalid_token", 'error="invalid_token"' in r.headers.get("www-authenticate", ""), r.headers)
    r = call("POST", "/auth/refresh", json={"refresh_token": rt})
    check_err("after logout refresh 401 invalid_grant", r, 401, "invalid_grant")
    b5 = login_ok(e, p)
    r = call("POST", "/auth/logout", token=b5["access_token"], json={"refresh_token": b5["refresh_token"]})
    check("logout {refresh_token} -> 204", r.status_code == 204, _short(r))
    b6 = login_ok(e, p)
    r = call("POST", "/auth/logout", token=b6["access_token"])
    check("logout with no body -> 204", r.status_code == 204, _short(r))
    b7, b8 = login_ok(e, p), login_ok(e, p)
    r = call("POST", "/auth/logout-all", token=b7["access_token"])
    check("logout-all 204", r.status_code == 204, _short(r))
    for lab, bb in (("self", b7), ("other", b8)):
        r = call("GET", "/users/me", token=bb["access_token"])
        check_err(f"logout-all ends {lab} session (access)", r, 401, "invalid_token")
        r = call("POST", "/auth/refresh", json={"refresh_token": bb["refresh_token"]})
        check_err(f"logout-all ends {lab} session (refresh)", r, 401, "invalid_grant")
    # Cache-Control on bearer-authenticated error responses
    r = call("GET", "/admin/users", token=login_ok(e, p)["access_token"])
    check("403 to bearer request has Cache-Control no-store", r.status_code == 403 and
          "no-store" in r.headers.get("cache-control", ""), _short(r))
    r = call("GET", "/nonexistent", token=login_ok(e, p)["access_token"])
    check("404 to bearer request has Cache-Control no-store", "no-store" in r.headers.get("cache-control", ""), _short(r))


def sec_refresh():
    e, p, u = register()
    b = login_ok(e, p)
    r = call("POST", "/auth/refresh", json={"refresh_token": b["refresh_token"]})
    n = body(r) or {}
    check("refresh 200 token response same session", r.status_code == 200 and n.get("session_id") == b["session_id"]
          and n.get("refresh_token") != b["refresh_token"], _short(r))
    check("refresh Cache-Control no-store", "no-store" in r.headers.get("cache-control", ""), dict(r.headers))
    c = decode(n["access_token"])
    check("refreshed access token claims keep sid/amr", c.get("sid") == b["session_id"] and c.get("amr") == ["pwd"], c)
    # replay within grace -> same successor
    r2 = call("POST", "/auth/refresh", json={"refresh_token": b["refresh_token"]})
    check("replay within grace 200", r2.status_code == 200, _short(r2))
    if r2.status_code == 200:
        check("replay within grace yields the same successor (no second chain)",
              r2.json()["refresh_token"] == n["refresh_token"], "different successor")
    r = call("POST", "/auth/refresh", json={})
    check_err("refresh missing field -> 400 invalid_request", r, 400, "invalid_request")
    r = call("POST", "/auth/refresh", json={"refresh_token": "garbage"})
    check_err("refresh garbage -> 401 invalid_grant", r, 401, "invalid_grant")
    r = call("POST", "/auth/refresh", json={"refresh_token": b["access_token"]})
    check_err("access token as refresh token -> 401 invalid_grant", r, 401, "invalid_grant")
    # concurrent refreshes within grace (default grace 10 s)
    b = login_ok(e, p)
    with cf.ThreadPoolExecutor(8) as ex:
        rs = list(ex.map(lambda _: call("POST", "/auth/refresh", json={"refresh_token": b["refresh_token"]}), range(8)))
    codes = [x.status_code for x in rs]
    succ = {x.json()["refresh_token"] for x in rs if x.status_code == 200}
    check("8 concurrent refreshes within grace all succeed", all(cd == 200 for cd in codes), codes)
    check("concurrent refreshes produce a single successor", len(succ) == 1, f"{len(succ)} distinct successors")
    # many refreshes then first token reuse past grace: uses aux server with grace=1
    # revoked family: logout then refresh
    # long chain on main server within grace: 300 refreshes
    b = login_ok(e, p)
    first = b["refresh_token"]
    cur = first
    t0 = time.time()
    okc = 0
    for i in range(300):
        r = call("POST", "/auth/refresh", json={"refresh_token": cur})
        if r.status_code != 200:
            break
        okc += 1
        cur = r.json()["refresh_token"]
    check("300 sequential refreshes succeed", okc == 300, f"{okc} ok, last {_short(r)}")
    note(f"300 refreshes took {time.time()-t0:.2f}s")


def sec_refresh_grace():
    """Aux server with reuse_grace=2 (reuse detection past grace) and one with reuse_grace=0."""
    a = Aux("{reuse_grace=2}")
    try:
        e, p, u = register(base=a.base)
        b = login_ok(e, p, base=a.base)
        r = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": b["refresh_token"]})
        n = r.json()
        r = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": n["refresh_token"]})
        newest = r.json()
        time.sleep(2.6)
        r = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": b["refresh_token"]})
        check_err("reuse past grace -> 401 invalid_grant", r, 401, "invalid_grant")
        r = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": newest["refresh_token"]})
        check_err("after reuse detection the newest refresh token fails", r, 401, "invalid_grant")
        r = call("GET", "/users/me", base=a.base, token=newest["access_token"])
        check_err("after reuse detection the session's access tokens fail", r, 401, "invalid_token")
        # thief replays within grace; then owner continues; then thief continues -> detection
        b = login_ok(e, p, base=a.base)
        owner = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": b["refresh_token"]}).json()
        thief = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": b["refresh_token"]})
        check("replay within grace 200 (aux)", thief.status_code == 200, _short(thief))
        thief = thief.json()
        check("replay within grace -> same successor (aux)", thief["refresh_token"] == owner["refresh_token"], "")
        # long chain then reuse of first token
        b = login_ok(e, p, base=a.base)
        cur = b["refresh_token"]
        for i in range(1200):
            r = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": cur})
            if r.status_code != 200:
                break
            cur = r.json()["refresh_token"]
        check("1200 refreshes ok (aux)", r.status_code == 200, _short(r))
        time.sleep(2.3)
        r = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": b["refresh_token"]})
        check_err("first token reused after 1200 refreshes -> 401 invalid_grant", r, 401, "invalid_grant")
        r = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": cur})
        check_err("...and the newest is dead", r, 401, "invalid_grant")
        # a mid-chain token reused (immediately, within grace?) -- generation g-5 exchanged long ago (> grace)
        b = login_ok(e, p, base=a.base)
        chain = [b["refresh_token"]]
        for i in range(6):
            chain.append(call("POST", "/auth/refresh", base=a.base, json={"refresh_token": chain[-1]}).json()["refresh_token"])
        time.sleep(2.3)
        r = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": chain[3]})
        check_err("mid-chain token reuse past grace -> 401 invalid_grant", r, 401, "invalid_grant")
        # audit event for reuse -> checked via metrics in metrics section
    finally:
        a.stop()
    a = Aux("{reuse_grace=0}")
    try:
        e, p, u = register(base=a.base)
        for trial in range(3):
            b = login_ok(e, p, base=a.base)
            with cf.ThreadPoolExecutor(10) as ex:
                rs = list(ex.map(lambda _: call("POST", "/auth/refresh", base=a.base,
                                                json={"refresh_token": b["refresh_token"]}), range(10)))
            codes = sorted(x.status_code for x in rs)
            check(f"reuse_grace=0: of 10 concurrent exchanges exactly one succeeds (trial {trial})",
                  codes.count(200) == 1, codes)
            bad = [x for x in rs if x.status_code != 200]
            check("reuse_grace=0: the others 401 invalid_grant", all(is_err(x, 401, "invalid_grant") for x in bad),
                  [_short(x) for x in bad[:2]])
        b = login_ok(e, p, base=a.base)
        n = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": b["refresh_token"]}).json()
        r = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": b["refresh_token"]})
        check_err("reuse_grace=0: immediate replay -> 401 invalid_grant", r, 401, "invalid_grant")
        r = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": n["refresh_token"]})
        check_err("reuse_grace=0: successor dead after replay", r, 401, "invalid_grant")
    finally:
        a.stop()


def sec_oauth():
    m = metadata()
    tep = m["token_endpoint"]
    e, p, u = register()
    # password grant with authlib (no client)
    s = OAuth2Session(token_endpoint=tep)
    try:
        t = s.fetch_token(tep, grant_type="password", username=e, password=p)
        check("authlib password grant", "access_token" in t and "refresh_token" in t and t.get("token_type") == "Bearer", t)
    except Exception as ex:
        check("authlib password grant", False, repr(ex))
        t = None
    # authlib with a public client_id (token_endpoint_auth_method none)
    s2 = OAuth2Session(client_id="my-spa", token_endpoint_auth_method="none")
    try:
        t2 = s2.fetch_token(tep, grant_type="password", username=e, password=p)
        check("authlib password grant with public client_id (auth method none)", "access_token" in t2, t2)
    except Exception as ex:
        note("authlib password grant with public client_id (auth method 'none', advertised) fails", repr(ex))
    if t:
        try:
            t3 = s.refresh_token(tep, refresh_token=t["refresh_token"])
            check("authlib refresh_token grant", t3.get("refresh_token") and t3["refresh_token"] != t["refresh_token"], t3)
            c = decode(t3["access_token"])
            check("refresh-grant token verifies", c["sub"] == u["id"], c)
        except Exception as ex:
            check("authlib refresh_token grant", False, repr(ex))
        # OAuth2Session auto-refresh via ensure_active_token with an expired token
        try:
            s4 = OAuth2Session(token=dict(t3, expires_at=int(time.time()) - 10), token_endpoint=tep,
                               update_token=lambda *a, **k: None)
            rr = s4.get(BASE + "/users/me")
            check("authlib OAuth2Session auto-refresh (expired token) then GET /users/me", rr.status_code == 200,
                  _short(rr))
        except Exception as ex:
            check("authlib OAuth2Session auto-refresh", False, repr(ex))
    raw = lambda data, **kw: call("POST", "/oauth/token", data=data, **kw)
    r = raw({"grant_type": "password", "username": e, "password": "bad" + p}, src="127.0.0.5")
    check_err("password grant wrong password -> 400 invalid_grant (RFC 6749 §5.2)", r, 400, "invalid_grant")
    check("oauth error has Cache-Control no-store", "no-store" in r.headers.get("cache-control", ""), dict(r.headers))
    try:
        s.fetch_token(tep, grant_type="password", username=e, password="bad" + p)
        check("authlib raises OAuthError invalid_grant on bad password", False, "no error")
    except AuthlibBaseError as ex:
        check("authlib raises OAuthError invalid_grant on bad password", ex.error == "invalid_grant", repr(ex))
    r = raw({"grant_type": "implicit"})
    check_err("unknown grant -> 400 unsupported_grant_type", r, 400, "unsupported_grant_type")
    r = raw({"grant_type": "authorization_code", "code": "x", "redirect_uri": "http://x/"})
    check_err("authorization_code -> 400 unsupported_grant_type", r, 400, "unsupported_grant_type")
    r = raw({})
    check_err("missing grant_type -> 400 invalid_request", r, 400, "invalid_request")
    r = raw({"grant_type": "password", "username": e})
    check_err("password grant missing password -> 400 invalid_request", r, 400, "invalid_request")
    r = raw({"grant_type": "refresh_token"})
    check_err("refresh grant missing refresh_token -> 400 invalid_request", r, 400, "invalid_request")
    r = raw({"grant_type": "refresh_token", "refresh_token": "nope"})
    check_err("refresh grant unknown token -> 400 invalid_grant", r, 400, "invalid_grant")
    r = call("POST", "/oauth/token", json={"grant_type": "password", "username": e, "password": p})
    check_err("JSON body at /oauth/token -> 400 invalid_request", r, 400, "invalid_request")
    r = raw({"grant_type": "password", "username": e, "password": p})
    check("raw password grant 200 + Cache-Control no-store", r.status_code == 200 and
          "no-store" in r.headers.get("cache-control", ""), _short(r))
    tr = r.json()
    check("password grant token response has session_id and refresh_expires_in",
          "session_id" in tr and "refresh_expires_in" in tr, tr)
    # scope on password grant
    r = raw({"grant_type": "password", "username": e, "password": p, "scope": "users:read"})
    note("password grant with scope=users:read (user lacks it)", _short(r)[:200])
    # revoke: RFC 7009 with authlib
    rvs = OAuth2Session()
    try:
        rr = rvs.revoke_token(m["revocation_endpoint"], token=tr["refresh_token"], token_type_hint="refresh_token")
        check("authlib revoke_token -> 200", rr.status_code == 200, _short(rr))
    except Exception as ex:
        check("authlib revoke_token -> 200", False, repr(ex))
    r = call("GET", "/users/me", token=tr["access_token"])
    check_err("revoked refresh token ends session (access token 401)", r, 401, "invalid_token")
    r = raw({"grant_type": "refresh_token", "refresh_token": tr["refresh_token"]})
    check_err("revoked refresh token -> 400 invalid_grant at /oauth/token", r, 400, "invalid_grant")
    tr = raw({"grant_type": "password", "username": e, "password": p}).json()
    r = call("POST", "/oauth/revoke", data={"token": tr["access_token"], "token_type_hint": "access_token"})
    check("revoke access token -> 200", r.status_code == 200, _short(r))
    r = call("POST", "/auth/refresh", json={"refresh_token": tr["refresh_token"]})
    check_err("revoking access token ends session (refresh 401)", r, 401, "invalid_grant")
    r = call("POST", "/oauth/revoke", data={"token": "unknown-token"})
    check("revoke unknown token -> 200", r.status_code == 200, _short(r))
    r = call("POST", "/oauth/revoke", data={"token": "unknown-token", "token_type_hint": "weird_hint"})
    check("revoke with unknown token_type_hint -> 200 (RFC 7009 §2.2.1 unsupported_token_type optional)",
          r.status_code in (200,), _short(r))
    r = call("POST", "/oauth/revoke", data={})
    check_err("revoke without token -> 400 invalid_request", r, 400, "invalid_request")


def sec_clients():
    m = metadata()
    tep = m["token_endpoint"]
    adm = admin_token()
    cid, csec, out = cli_client(MAIN_DB, "cli-client", ["users:read", "metrics:read", "tokens:introspect"])
    check("portcullis client create prints client_id and client_secret", cid and csec, out)
    STATE["metrics_client"] = (cid, csec)
    for method in ("client_secret_basic", "client_secret_post"):
        s = OAuth2Session(client_id=cid, client_secret=csec, token_endpoint_auth_method=method)
        try:
            t = s.fetch_token(tep, grant_type="client_credentials")
            check(f"authlib client_credentials ({method})", "access_token" in t and "refresh_token" not in t
                  and t.get("token_type") == "Bearer" and "expires_in" in t, t)
            check(f"client_credentials scope = all permissions ({method})",
                  set(t.get("scope", "").split()) == {"users:read", "metrics:read", "tokens:introspect"}, t)
            hdr = jwt.get_unverified_header(t["access_token"])
            c = decode(t["access_token"])
            check(f"client token claims ({method})", hdr.get("typ") == "at+jwt" and c.get("sub") == cid and
                  c.get("client_id") == cid and "sid" not in c and "roles" not in c and
                  set(c.get("scope", "").split()) == {"users:read", "metrics:read", "tokens:introspect"}, (hdr, c))
        except Exception as ex:
            check(f"authlib client_credentials ({method})", False, repr(ex))
    s = OAuth2Session(client_id=cid, client_secret=csec)
    t = s.fetch_token(tep, grant_type="client_credentials", scope="users:read")
    check("scope narrows", t.get("scope") == "users:read", t)
    ctok = t["access_token"]
    r = call("GET", "/admin/users", token=ctok)
    check("client token with users:read -> GET /admin/users 200", r.status_code == 200, _short(r))
    r = call("GET", "/admin/roles", token=ctok)
    check_err("client token lacking roles:read -> 403", r, 403, "insufficient_permissions")
    r = call("GET", "/metrics", token=ctok)
    check_err("client token narrowed (no metrics:read) -> /metrics 403", r, 403, "insufficient_permissions")
    for meth, path in (("GET", "/users/me"), ("GET", "/auth/sessions"), ("POST", "/auth/logout"),
                       ("POST", "/auth/logout-all"), ("PUT", "/users/me/password")):
        kw = {"json": {"current_password": "x" * 10, "new_password": pw()}} if meth == "PUT" else {}
        r = call(meth, path, token=ctok, **kw)
        check_err(f"client token at {meth} {path} -> 403 insufficient_permissions", r, 403, "insufficient_permissions")
    try:
        s.fetch_token(tep, grant_type="client_credentials", scope="users:write")
        check("scope the client lacks -> invalid_scope", False, "no error")
    except AuthlibBaseError as ex:
        check("scope the client lacks -> authlib OAuthError invalid_scope", ex.error == "invalid_scope", repr(ex))
    r = call("POST", "/oauth/token", data={"grant_type": "client_credentials", "scope": "users:write"},
             auth=(cid, csec))
    check_err("scope the client lacks -> 400 invalid_scope", r, 400, "invalid_scope")
    r = call("POST", "/oauth/token", data={"grant_type": "client_credentials", "scope": "nosuch:perm"},
             auth=(cid, csec))
    check_err("unknown scope -> 400 invalid_scope", r, 400, "invalid_scope")
    # bad secret
    r = call("POST", "/oauth/token", data={"grant_type": "client_credentials"}, auth=(cid, "wrong"))
    check_err("bad secret (basic) -> 401 invalid_client", r, 401, "invalid_client")
    check("bad secret (basic) -> WWW-Authenticate: Basic", r.headers.get("www-authenticate", "").startswith("Basic"),
          r.headers.get("www-authenticate"))
    r = call("POST", "/oauth/token", data={"grant_type": "client_credentials", "client_id": cid,
                                           "client_secret": "wrong"})
    check_err("bad secret (post) -> 401 invalid_client", r, 401, "invalid_client")
    r = call("POST", "/oauth/token", data={"grant_type": "client_credentials", "client_id": str(uuid.uuid4()),
                                           "client_secret": "wrong"})
    check_err("unknown client (post) -> 401 invalid_client", r, 401, "invalid_client")
    r = call("POST", "/oauth/token", data={"grant_type": "client_credentials"})
    check("client_credentials without client auth -> 401 invalid_client (or 400 invalid_request)",
          is_err(r, 401, "invalid_client") or is_err(r, 400, "invalid_request"), _short(r))
    try:
        OAuth2Session(client_id=cid, client_secret="wrong").fetch_token(tep, grant_type="client_credentials")
        check("authlib bad secret raises invalid_client", False, "")
    except AuthlibBaseError as ex:
        check("authlib bad secret raises invalid_client", ex.error == "invalid_client", repr(ex))
    # RFC 6749 §2.3.1: basic credentials form-urlencoded first (authlib does this); secret with '+','/'?
    check("client_secret is URL-safe (basic/urlencode neutral)", re.match(r"^[A-Za-z0-9_\-\.~]+$", csec) is not None, csec)

    # introspection with authlib
    e, p, u = register()
    ut = login_ok(e, p)
    ins = OAuth2Session(client_id=cid, client_secret=csec)
    try:
        rr = ins.introspect_token(m["introspection_endpoint"], token=ut["access_token"], token_type_hint="access_token")
        j = rr.json()
        check("introspect live user access token -> active with fields", rr.status_code == 200 and j.get("active") is True
              and j.get("token_type") == "access_token" and j.get("sub") == u["id"] and j.get("sid") == ut["session_id"]
              and j.get("roles") == ["user"] and all(k in j for k in ("exp", "iat", "iss", "aud")), j)
    except Exception as ex:
        check("introspect live user access token", False, repr(ex))
    rr = ins.introspect_token(m["introspection_endpoint"], token=ut["refresh_token"])
    j = rr.json()
    check("introspect refresh token -> active refresh_token", j.get("active") is True and j.get("token_type") == "refresh_token"
          and j.get("sub") == u["id"] and "exp" in j, j)
    rr = ins.introspect_token(m["introspection_endpoint"], token=ctok)
    j = rr.json()
    check("introspect client token -> active with client_id, scope", j.get("active") is True and j.get("client_id") == cid
          and j.get("scope") == "users:read" and j.get("sub") == cid, j)
    rr = ins.introspect_token(m["introspection_endpoint"], token="garbage")
    check("introspect garbage -> {active:false}", rr.status_code == 200 and rr.json() == {"active": False}, _short(rr))
    call("POST", "/auth/logout", token=ut["access_token"])
    rr = ins.introspect_token(m["introspection_endpoint"], token=ut["access_token"])
    check("introspect token of ended session -> inactive", rr.json() == {"active": False}, _short(rr))
    rr = ins.introspect_token(m["introspection_endpoint"], token=ut["refresh_token"])
    check("introspect refresh token of ended session -> inactive", rr.json() == {"active": False}, _short(rr))
    r = call("POST", "/oauth/introspect", data={"token": ctok})
    check_err("introspect without client auth -> 401 invalid_client", r, 401, "invalid_client")
    r = call("POST", "/oauth/introspect", data={"token": ctok}, auth=(cid, "bad"))
    check_err("introspect bad basic -> 401 invalid_client", r, 401, "invalid_client")
    check("introspect bad basic -> WWW-Authenticate Basic", r.headers.get("www-authenticate", "").startswith("Basic"), _short(r))
    r = call("POST", "/oauth/introspect", data={"token": ctok, "client_id": cid, "client_secret": csec})
    check("introspect with client_secret_post -> 200 active", r.status_code == 200 and body(r).get("active") is True, _short(r))
    r = call("POST", "/oauth/introspect", data={}, auth=(cid, csec))
    check_err("introspect missing token -> 400 invalid_request", r, 400, "invalid_request")

    # admin clients API
    r = call("POST", "/admin/clients", token=adm, json={"name": "api-client", "permissions": ["users:read"]})
    b = body(r) or {}
    check("POST /admin/clients 201 client + secret", r.status_code == 201 and set(b) >= {
        "client_id", "name", "permissions", "disabled", "created_at", "client_secret"}, _short(r))
    cid2, sec2 = b.get("client_id"), b.get("client_secret")
    r = call("GET", "/admin/clients", token=adm)
    lst = (body(r) or {}).get("clients", [])
    check("GET /admin/clients lists it, no secret", r.status_code == 200 and any(c["client_id"] == cid2 for c in lst)
          and "client_secret" not in r.text and all(set(c) >= {"client_id", "name", "permissions", "disabled", "created_at"} for c in lst), _short(r))
    r = call("POST", "/admin/clients", token=adm, json={"name": "x", "permissions": ["no:such"]})
    check_err("client with unknown permission -> 422", r, 422, "invalid_request")
    t2 = OAuth2Session(client_id=cid2, client_secret=sec2).fetch_token(tep, grant_type="client_credentials")
    r = call("POST", f"/admin/clients/{cid2}/secret", token=adm)
    nb = body(r) or {}
    check("rotate client secret 200 {client_id, client_secret}", r.status_code == 200 and nb.get("client_id") == cid2
          and nb.get("client_secret") and nb["client_secret"] != sec2, _short(r))
    r = call("POST", "/oauth/token", data={"grant_type": "client_credentials"}, auth=(cid2, sec2))
    check_err("old secret stops working", r, 401, "invalid_client")
    r = call("POST", "/oauth/token", data={"grant_type": "client_credentials"}, auth=(cid2, nb.get("client_secret", "")))
    check("new secret works", r.status_code == 200, _short(r))
    r = call("DELETE", f"/admin/clients/{cid2}", token=adm)
    check("DELETE client 204", r.status_code == 204, _short(r))
    r = call("GET", "/admin/users", token=t2["access_token"])
    check_err("deleted client's token rejected at once -> 401 invalid_token", r, 401, "invalid_token")
    rr = ins.introspect_token(m["introspection_endpoint"], token=t2["access_token"])
    check("deleted client's token inactive at introspection", rr.json() == {"active": False}, _short(rr))
    r = call("DELETE", f"/admin/clients/{cid2}", token=adm)
    check_err("DELETE unknown client -> 404", r, 404, "not_found")
    # delegation for clients: a user with clients:write + users:read cannot create a client with users:write
    rn = "cw-" + uuid.uuid4().hex[:6]
    r = call("POST", "/admin/roles", token=adm, json={"name": rn, "description": "d",
                                                       "permissions": ["clients:write", "clients:read", "users:read"]})
    check("create role clients:write+users:read", r.status_code == 201, _short(r))
    e, p, u = register()
    call("PUT", f"/admin/users/{u['id']}/roles", token=adm, json={"roles": ["user", rn]})
    ct = login_ok(e, p)["access_token"]
    r = call("POST", "/admin/clients", token=ct, json={"name": "y", "permissions": ["users:write"]})
    check_err("clients:write holder cannot give a client users:write -> 403", r, 403, "insufficient_permissions")
    r = call("POST", "/admin/clients", token=ct, json={"name": "y", "permissions": ["users:read"]})
    check("clients:write holder can give a client users:read -> 201", r.status_code == 201, _short(r))
    # client token at /admin with write scope acts as client: client with users:write creating role? keep simple
    cid3, sec3, _ = cli_client(MAIN_DB, "writer", ["users:write", "users:read", "audit:read"])
    t3 = OAuth2Session(client_id=cid3, client_secret=sec3).fetch_token(tep, grant_type="client_credentials")["access_token"]
    e4, p4, u4 = register()
    r = call("PUT", f"/admin/users/{u4['id']}/roles", token=t3, json={"roles": ["user", "admin"]})
    check_err("client with users:write cannot grant admin -> 403", r, 403, "insufficient_permissions")
    r = call("PATCH", f"/admin/users/{u4['id']}", token=t3, json={"disabled": True})
    check("client with users:write disables a user -> 200", r.status_code == 200 and body(r).get("disabled") is True, _short(r))
    r = call("GET", f"/admin/audit?user_id={u4['id']}&event=user_disabled", token=t3)
    evs = (body(r) or {}).get("events", [])
    check("audit records user_disabled by client", r.status_code == 200 and evs, _short(r))
    note("audit event written by client", json.dumps(evs[:1]))


def sec_mfa():
    m = metadata()
    e, p, u = register()
    b = login_ok(e, p)
    other = login_ok(e, p)
    tok = b["access_token"]
    r = call("POST", "/auth/mfa/totp", token=tok, json={"password": "wrong" + p}, src="127.0.0.11")
    check_err("enrol with wrong password -> 401 invalid_credentials", r, 401, "invalid_credentials")
    r = call("POST", "/auth/mfa/totp", token=tok, json={"password": p})
    j = body(r) or {}
    check("enrol 201 {secret, otpauth_uri}", r.status_code == 201 and "secret" in j and "otpauth_uri" in j, _short(r))
    r2 = call("POST", "/auth/mfa/totp", token=tok, json={"password": p})
    j = body(r2) or j
    check("enrol again replaces pending (201, new secret)", r2.status_code == 201 and j["secret"] != body(r)["secret"], _short(r2))
    uri = j["otpauth_uri"]
    host = urllib.parse.urlsplit(BASE).hostname  # auth.display_name defaults to the issuer's host
    exp_uri = (f"otpauth://totp/{host}:{e}?secret={j['secret']}&issuer={host}&algorithm=SHA1&digits=6&period=30")
    check("otpauth_uri exact format", uri == exp_uri or urllib.parse.unquote(uri) == exp_uri, f"{uri} vs {exp_uri}")
    totp = pyotp.parse_uri(uri)
    check("pyotp.parse_uri -> TOTP sha1/6/30", isinstance(totp, pyotp.TOTP) and totp.digits == 6 and totp.interval == 30
          and totp.secret == j["secret"], repr(totp))
    old_totp = pyotp.TOTP(body(r)["secret"])
    r = call("POST", "/auth/mfa/totp/confirm", token=tok, json={"code": old_totp.now()})
    check("confirm with replaced (old) pending secret refused", r.status_code in (400, 401, 422), _short(r))
    note("confirm wrong code answer", _short(r)[:200])
    r = call("POST", "/auth/mfa/totp/confirm", token=tok, json={"code": totp.now()})
    j = body(r) or {}
    rc = j.get("recovery_codes", [])
    check("confirm 200 with 10 recovery codes", r.status_code == 200 and len(rc) == 10 and len(set(rc)) == 10, _short(r))
    r = call("GET", "/users/me", token=other["access_token"])
    check_err("confirm ends every other session", r, 401, "invalid_token")
    r = call("GET", "/users/me", token=tok)
    check("confirm keeps current session; user.mfa true", r.status_code == 200 and body(r).get("mfa") is True, _short(r))
    # login now needs 2nd step
    r = login(e, p)
    j = body(r) or {}
    check_err("login with MFA -> 403 mfa_required", r, 403, "mfa_required", "mfa_token" in j)
    mt = j.get("mfa_token")
    r = login(e, "wrong" + p, src="127.0.0.12")
    r0 = login(email(), "wrong" + p, src="127.0.0.12")
    check("wrong password for MFA account identical to unknown email",
          r.status_code == r0.status_code == 401 and r.json() == r0.json(), f"{_short(r)} vs {_short(r0)}")
    r = call("POST", "/auth/mfa/verify", json={"mfa_token": mt, "code": totp.now()})
    check_err("code already used at confirm is refused at verify (replay)", r, 401, "invalid_credentials")
    code = totp.at(time.time() + 30)
    r = call("POST", "/auth/mfa/verify", json={"mfa_token": mt, "code": code})
    j = body(r) or {}
    check("mfa/verify 200 token response", r.status_code == 200 and "refresh_token" in j and "session_id" in j, _short(r))
    check("mfa/verify Cache-Control no-store", "no-store" in r.headers.get("cache-control", ""), dict(r.headers))
    if r.status_code == 200:
        c = decode(j["access_token"])
        check("amr after MFA == ['pwd','otp','mfa']", c.get("amr") == ["pwd", "otp", "mfa"], c)
        n = call("POST", "/auth/refresh", json={"refresh_token": j["refresh_token"]}).json()
        c = decode(n["access_token"])
        check("refresh keeps amr", c.get("amr") == ["pwd", "otp", "mfa"], c)
        mtok = n["access_token"]
    r = call("POST", "/auth/mfa/verify", json={"mfa_token": mt, "code": code})
    check_err("mfa_token single use -> 401 invalid_grant", r, 401, "invalid_grant")
    # replay same code with a fresh mfa_token
    mt2 = login(e, p).json().get("mfa_token")
    r = call("POST", "/auth/mfa/verify", json={"mfa_token": mt2, "code": code})
    check_err("replayed TOTP code refused -> 401 invalid_credentials", r, 401, "invalid_credentials")
    r = call("POST", "/auth/mfa/verify", json={"mfa_token": mt2, "code": totp.now()})
    check_err("older period code after a newer one was accepted -> 401", r, 401, "invalid_credentials")
    # password grant with MFA on
    r = call("POST", "/oauth/token", data={"grant_type": "password", "username": e, "password": p})
    check_err("password grant with MFA -> 403 mfa_required + mfa_token", r, 403, "mfa_required",
              "mfa_token" in (body(r) or {}))
    try:
        OAuth2Session().fetch_token(m["token_endpoint"], grant_type="password", username=e, password=p)
        check("authlib password grant with MFA raises mfa_required", False, "no error")
    except AuthlibBaseError as ex:
        check("authlib password grant with MFA raises OAuthError mfa_required", ex.error == "mfa_required", repr(ex))
    # 5 wrong codes -> mfa_token dead (use a second account, separate address)
    e2, p2, u2 = register()
    t2 = login_ok(e2, p2)["access_token"]
    s2 = call("POST", "/auth/mfa/totp", token=t2, json={"password": p2}).json()["secret"]
    tp2 = pyotp.TOTP(s2)
    rc2 = call("POST", "/auth/mfa/totp/confirm", token=t2, json={"code": tp2.now()}).json()["recovery_codes"]
    m_a = login(e2, p2, src="127.0.0.19").json().get("mfa_token")
    m_b = login(e2, p2, src="127.0.0.19").json().get("mfa_token")
    nxt = tp2.at(time.time() + 30)
    with cf.ThreadPoolExecutor(2) as ex:
        rs = list(ex.map(lambda m: call("POST", "/auth/mfa/verify", json={"mfa_token": m, "code": nxt}, src="127.0.0.19"), [m_a, m_b]))
    check("one code presented twice at once: exactly one wins", sorted(x.status_code for x in rs) == [200, 401],
          [_short(x)[:120] for x in rs])
    mt = login(e2, p2, src="127.0.0.13").json().get("mfa_token")
    good = tp2.now()
    wrong = [str((int(good) + k * 111111) % 1000000).zfill(6) for k in range(1, 7)]
    wrong = [w for w in wrong if w not in (tp2.at(time.time() - 30), tp2.at(time.time() + 30), good)][:5]
    rs = [call("POST", "/auth/mfa/verify", json={"mfa_token": mt, "code": w}, src="127.0.0.13") for w in wrong]
    check("5 wrong codes -> 401 invalid_credentials each", all(is_err(x, 401, "invalid_credentials") for x in rs),
          [_short(x)[:100] for x in rs])
    r = call("POST", "/auth/mfa/verify", json={"mfa_token": mt, "code": tp2.at(time.time() + 60)}, src="127.0.0.13")
    check_err("after 5 wrong codes mfa_token dead -> 401 invalid_grant", r, 401, "invalid_grant")
    # wrong codes count toward throttling: account+address now has 5 failures -> next login from .13 is 429
    r = login(e2, p2, src="127.0.0.13")
    check("after 5 wrong MFA codes, login from same address throttled (429 + Retry-After)",
          is_err(r, 429, "too_many_requests") and r.headers.get("retry-after", "").isdigit(), _short(r))
    r = login(e2, p2, src="127.0.0.14")
    check("...but not from another address (403 mfa_required)", is_err(r, 403, "mfa_required"), _short(r))
    # recovery codes
    mt = login(e, p, src="127.0.0.15").json()["mfa_token"]
    r = call("POST", "/auth/mfa/verify", json={"mfa_token": mt, "code": rc[0]}, src="127.0.0.15")
    check("recovery code works at verify", r.status_code == 200, _short(r))
    if r.status_code == 200:
        c = decode(r.json()["access_token"])
        note("amr after recovery-code login", c.get("amr"))
    mt = login(e, p, src="127.0.0.15").json()["mfa_token"]
    r = call("POST", "/auth/mfa/verify", json={"mfa_token": mt, "code": rc[0]}, src="127.0.0.15")
    check_err("recovery code works once", r, 401, "invalid_credentials")
    # regenerate recovery codes
    r = call("POST", "/auth/mfa/recovery-codes", token=tok, json={"password": p, "code": rc[1]})
    nrc = (body(r) or {}).get("recovery_codes", [])
    check("recovery-codes regen 200 new set of 10", r.status_code == 200 and len(nrc) == 10, _short(r))
    mt = login(e, p, src="127.0.0.15").json()["mfa_token"]
    r = call("POST", "/auth/mfa/verify", json={"mfa_token": mt, "code": rc[2]}, src="127.0.0.15")
    check_err("old recovery set stops working", r, 401, "invalid_credentials")
    r = call("POST", "/auth/mfa/verify", json={"mfa_token": mt, "code": nrc[0]}, src="127.0.0.15")
    check("new recovery code works", r.status_code == 200, _short(r))
    r = call("POST", "/auth/mfa/verify", json={"mfa_token": "nope", "code": "123456"})
    check_err("unknown mfa_token -> 401 invalid_grant", r, 401, "invalid_grant")
    r = call("POST", "/auth/mfa/verify", json={"mfa_token": b["refresh_token"], "code": "123456"})
    check_err("refresh token as mfa_token -> 401 invalid_grant", r, 401, "invalid_grant")
    r = call("GET", "/users/me", token=mt)
    check_err("mfa_token as bearer -> 401 invalid_token", r, 401, "invalid_token")
    # disable MFA: wrong code then right
    r = call("DELETE", "/auth/mfa/totp", token=tok, json={"password": p, "code": "000000"})
    check("DELETE /auth/mfa/totp wrong code refused (401)", r.status_code == 401, _short(r))
    r = call("DELETE", "/auth/mfa/totp", token=tok, json={"password": p, "code": nrc[1]})
    check("DELETE /auth/mfa/totp with recovery code -> 204", r.status_code == 204, _short(r))
    r = login(e, p)
    check("after disabling MFA, login 200", r.status_code == 200, _short(r))
    # admin reset
    adm = admin_token()
    bb = login_ok(e2, p2, src="127.0.0.16") if False else None
    mt = login(e2, p2, src="127.0.0.16").json()["mfa_token"]
    vt = call("POST", "/auth/mfa/verify", json={"mfa_token": mt, "code": rc2[0]}, src="127.0.0.16")
    check("second account logs in with a recovery code", vt.status_code == 200, _short(vt))
    r = call("DELETE", f"/admin/users/{u2['id']}/mfa", token=adm)
    check("DELETE /admin/users/<id>/mfa -> 204", r.status_code == 204, _short(r))
    if vt.status_code == 200:
        r = call("GET", "/users/me", token=vt.json()["access_token"])
        check_err("admin MFA reset ends every session", r, 401, "invalid_token")
    r = login(e2, p2, src="127.0.0.16")
    check("after admin reset, login 200 without MFA", r.status_code == 200, _short(r))
    r = call("GET", f"/admin/audit?user_id={u2['id']}", token=adm)
    evs = {x["event"] for x in (body(r) or {}).get("events", [])}
    check("audit has mfa_enabled, mfa_failed, mfa_reset", {"mfa_enabled", "mfa_failed", "mfa_reset"} <= evs, evs)
    r = call("GET", f"/admin/audit?user_id={u['id']}", token=adm)
    evs = {x["event"] for x in (body(r) or {}).get("events", [])}
    check("audit has recovery_code_used, mfa_disabled", {"recovery_code_used", "mfa_disabled"} <= evs, evs)


def sec_mfa_required_roles():
    a = Aux('{mfa_required_roles=["admin"]}')
    try:
        e, p = email("madm"), pw()
        cli_user(a.db, e, p, roles=["admin"], extra_env=a.auth_env())
        b = login_ok(e, p, base=a.base)
        r = call("GET", "/admin/users", base=a.base, token=b["access_token"])
        check_err("mfa_required_roles: admin without otp -> /admin 403 mfa_required", r, 403, "mfa_required")
        r = call("GET", "/admin/roles", base=a.base, token=b["access_token"])
        check_err("mfa_required_roles: every /admin endpoint", r, 403, "mfa_required")
        r = call("POST", "/auth/mfa/totp", base=a.base, token=b["access_token"], json={"password": p})
        check("mfa_required_roles: enrolment reachable", r.status_code == 201, _short(r))
        tp = pyotp.TOTP(r.json()["secret"])
        r = call("POST", "/auth/mfa/totp/confirm", base=a.base, token=b["access_token"], json={"code": tp.now()})
        r = call("GET", "/admin/users", base=a.base, token=b["access_token"])
        check_err("mfa_required_roles: still 403 with pwd-only token after enrolment", r, 403, "mfa_required")
        mt = login(e, p, base=a.base).json()["mfa_token"]
        v = call("POST", "/auth/mfa/verify", base=a.base, json={"mfa_token": mt, "code": tp.at(time.time() + 30)}).json()
        r = call("GET", "/admin/users", base=a.base, token=v["access_token"])
        check("mfa_required_roles: admin with otp -> 200", r.status_code == 200, _short(r))
    finally:
        a.stop()


def sec_admin():
    adm = admin_token()
    ae = STATE["admin"][0]
    e, p, u = register()
    r = call("GET", "/admin/users?limit=2&offset=0", token=adm)
    j = body(r) or {}
    check("GET /admin/users {users,total} limit", r.status_code == 200 and len(j.get("users", [])) == 2
          and isinstance(j.get("total"), int) and j["total"] >= 2, _short(r))
    r = call("GET", f"/admin/users?email={urllib.parse.quote(e[:12])}", token=adm)
    j = body(r) or {}
    check("GET /admin/users?email= filter", r.status_code == 200 and [x["id"] for x in j.get("users", [])] == [u["id"]]
          and j.get("total") == 1, _short(r))
    r = call("GET", "/admin/users?limit=201", token=adm)
    note("GET /admin/users?limit=201 (contract: at most 200)", _short(r)[:150])
    r = call("GET", "/admin/users?limit=-1", token=adm)
    note("GET /admin/users?limit=-1", _short(r)[:150])
    r = call("GET", f"/admin/users/{u['id']}", token=adm)
    check("GET /admin/users/<id>", r.status_code == 200 and body(r)["id"] == u["id"], _short(r))
    r = call("GET", f"/admin/users/{uuid.uuid4()}", token=adm)
    check_err("GET unknown user -> 404", r, 404, "not_found")
    r = call("GET", "/admin/users/not-a-uuid", token=adm)
    check("GET /admin/users/not-a-uuid -> 404 (or 4xx JSON)", 400 <= r.status_code < 500 and "error" in (body(r) or {}), _short(r))
    r = call("GET", "/admin/users", token=login_ok(e, p)["access_token"])
    check_err("plain user -> /admin/users 403", r, 403, "insufficient_permissions")
    r = call("GET", "/admin/users")
    check_err("no token -> /admin/users 401", r, 401, "invalid_token")
    # roles
    r = call("GET", "/admin/roles", token=adm)
    roles = {x["name"]: x for x in (body(r) or {}).get("roles", [])}
    check("GET /admin/roles has admin and user with fields", {"admin", "user"} <= set(roles) and
          all(set(x) >= {"name", "description", "permissions"} for x in roles.values()), _short(r))
    need = {"users:read", "users:write", "roles:read", "roles:write", "sessions:read", "sessions:revoke", "audit:read",
            "clients:read", "clients:write", "metrics:read"}
    check("admin role lists every built-in permission", need <= set(roles.get("admin", {}).get("permissions", [])), roles.get("admin"))
    rn = "editor-" + uuid.uuid4().hex[:6]
    r = call("POST", "/admin/roles", token=adm, json={"name": rn, "description": "Edits", "permissions": ["users:read"]})
    check("POST /admin/roles 201 role", r.status_code == 201 and body(r).get("name") == rn, _short(r))
    r = call("POST", "/admin/roles", token=adm, json={"name": rn, "description": "Edits", "permissions": []})
    check_err("duplicate role -> 409", r, 409, "conflict")
    r = call("POST", "/admin/roles", token=adm, json={"name": "bad-perm-" + uuid.uuid4().hex[:4], "description": "x",
                                                       "permissions": ["nope:nope"]})
    check_err("unknown permission -> 422", r, 422, "invalid_request")
    r = call("POST", "/admin/roles", token=adm, json={"name": "app-" + uuid.uuid4().hex[:4], "description": "x",
                                                       "permissions": ["reports:read"]})
    check("role with application permission reports:read (configured) -> 201", r.status_code == 201, _short(r))
    r = call("PUT", f"/admin/roles/{rn}", token=adm, json={"description": "Edits2", "permissions": ["users:read", "audit:read"]})
    check("PUT /admin/roles/<name> 200", r.status_code == 200 and set(body(r)["permissions"]) == {"users:read", "audit:read"}, _short(r))
    r = call("PUT", f"/admin/roles/nosuch-{uuid.uuid4().hex[:4]}", token=adm, json={"description": "x", "permissions": []})
    check_err("PUT unknown role -> 404", r, 404, "not_found")
    r = call("PUT", f"/admin/users/{u['id']}/roles", token=adm, json={"roles": ["user", rn]})
    check("PUT /admin/users/<id>/roles 200 user object", r.status_code == 200 and set(body(r)["roles"]) == {"user", rn}, _short(r))
    r = call("PUT", f"/admin/users/{u['id']}/roles", token=adm, json={"roles": ["user", "nosuchrole"]})
    check_err("unknown role -> 422", r, 422, "invalid_request")
    r = call("DELETE", f"/admin/roles/{rn}", token=adm)
    check_err("DELETE assigned role -> 409", r, 409, "conflict")
    for br in ("admin", "user"):
        r = call("DELETE", f"/admin/roles/{br}", token=adm)
        check_err(f"DELETE built-in role {br} -> 409", r, 409, "conflict")
    # added role reaches claim at next refresh
    b = login_ok(e, p)
    c = decode(b["access_token"])
    check("login token roles include new role", set(c["roles"]) == {"user", rn}, c)
    # permission removal from role applies at once
    r = call("GET", "/admin/audit?limit=5", token=b["access_token"])
    check("role holder with audit:read -> /admin/audit 200", r.status_code == 200, _short(r))
    ev = (body(r) or {}).get("events", [])
    check("audit events shape", all(set(x) >= {"id", "at", "event", "user_id", "ip", "detail"} for x in ev), ev[:1])
    call("PUT", f"/admin/roles/{rn}", token=adm, json={"description": "Edits2", "permissions": ["users:read"]})
    r = call("GET", "/admin/audit?limit=5", token=b["access_token"])
    check("permission removed from role applies at once (403 or 401)", is_err(r, 403, "insufficient_permissions")
          or is_err(r, 401, "invalid_token"), _short(r))
    # role removal from user applies at once
    r = call("GET", "/admin/users", token=b["access_token"])
    check("role holder with users:read -> 200", r.status_code == 200, _short(r))
    call("PUT", f"/admin/users/{u['id']}/roles", token=adm, json={"roles": ["user"]})
    r = call("GET", "/admin/users", token=b["access_token"])
    check("role removed from user applies at once (403/401)", r.status_code in (401, 403) and is_err(
        r, r.status_code, "invalid_token" if r.status_code == 401 else "insufficient_permissions"), _short(r))
    n = call("POST", "/auth/refresh", json={"refresh_token": b["refresh_token"]}).json()
    check("after refresh roles == ['user']", decode(n["access_token"])["roles"] == ["user"], n)
    # added role at next refresh
    call("PUT", f"/admin/users/{u['id']}/roles", token=adm, json={"roles": ["user", rn]})
    n2 = call("POST", "/auth/refresh", json={"refresh_token": n["refresh_token"]}).json()
    check("added role reaches claim at next refresh", set(decode(n2["access_token"])["roles"]) == {"user", rn}, n2)
    call("PUT", f"/admin/users/{u['id']}/roles", token=adm, json={"roles": ["user"]})
    r = call("DELETE", f"/admin/roles/{rn}", token=adm)
    check("DELETE unassigned role 204", r.status_code == 204, _short(r))

    # delegation: users:write holder escalating to admin
    um = "usermgr-" + uuid.uuid4().hex[:6]
    call("POST", "/admin/roles", token=adm, json={"name": um, "description": "x", "permissions": ["users:read", "users:write"]})
    big = "big-" + uuid.uuid4().hex[:6]
    call("POST", "/admin/roles", token=adm, json={"name": big, "description": "x", "permissions": ["users:read", "roles:write"]})
    me, mp, mu = register()
    call("PUT", f"/admin/users/{mu['id']}/roles", token=adm, json={"roles": ["user", um]})
    mt = login_ok(me, mp)["access_token"]
    r = call("PUT", f"/admin/users/{mu['id']}/roles", token=mt, json={"roles": ["user", um, "admin"]})
    check_err("users:write holder granting itself admin -> 403", r, 403, "insufficient_permissions")
    r = call("PUT", f"/admin/users/{mu['id']}/roles", token=mt, json={"roles": ["user", um, big]})
    check_err("users:write holder granting itself role with roles:write -> 403", r, 403, "insufficient_permissions")
    r = call("PUT", f"/admin/users/{u['id']}/roles", token=mt, json={"roles": ["user", um]})
    check("users:write holder can grant a role within its permissions -> 200", r.status_code == 200, _short(r))
    r = call("PUT", f"/admin/users/{u['id']}/roles", token=mt, json={"roles": ["user"]})
    check("...and remove it -> 200", r.status_code == 200, _short(r))
    r = call("PUT", f"/admin/users/{STATE.get('admin_id') or _admin_id(adm)}/roles", token=mt, json={"roles": ["user"]})
    check_err("users:write holder removing admin from an admin -> 403", r, 403, "insufficient_permissions")
    # roles:write holder enlarging own role / the user role
    rw = "rolew-" + uuid.uuid4().hex[:6]
    call("POST", "/admin/roles", token=adm, json={"name": rw, "description": "x", "permissions": ["roles:read", "roles:write"]})
    we, wp, wu = register()
    call("PUT", f"/admin/users/{wu['id']}/roles", token=adm, json={"roles": ["user", rw]})
    wt = login_ok(we, wp)["access_token"]
    r = call("PUT", f"/admin/roles/{rw}", token=wt, json={"description": "x", "permissions": ["roles:read", "roles:write", "users:write"]})
    check_err("roles:write holder enlarging own role -> 403", r, 403, "insufficient_permissions")
    r = call("PUT", "/admin/roles/user", token=wt, json={"description": "x", "permissions": ["users:read"]})
    check_err("roles:write holder adding users:read to built-in user role -> 403", r, 403, "insufficient_permissions")
    r = call("POST", "/admin/roles", token=wt, json={"name": "evil-" + uuid.uuid4().hex[:4], "description": "x", "permissions": ["audit:read"]})
    check_err("roles:write holder creating role with audit:read -> 403", r, 403, "insufficient_permissions")
    r = call("POST", "/admin/roles", token=wt, json={"name": "ok-" + uuid.uuid4().hex[:4], "description": "x", "permissions": ["roles:read"]})
    check("roles:write holder creating role within own permissions -> 201", r.status_code == 201, _short(r))
    r = call("PUT", "/admin/roles/admin", token=wt, json={"description": "x", "permissions": ["roles:read"]})
    check("roles:write holder changing admin role -> 403/409", r.status_code in (403, 409), _short(r))
    # demoted admin's token refused at once
    e2, p2 = email("adm2"), pw()
    cli_user(MAIN_DB, e2, p2, roles=["admin"])
    a2 = login_ok(e2, p2)
    a2id = decode(a2["access_token"])["sub"]
    r = call("PUT", f"/admin/users/{a2id}/roles", token=adm, json={"roles": ["user"]})
    check("admin demotes second admin 200", r.status_code == 200, _short(r))
    r = call("PUT", f"/admin/users/{a2id}/roles", token=a2["access_token"], json={"roles": ["user", "admin"]})
    check("demoted admin's old token cannot re-promote (401/403)", r.status_code in (401, 403), _short(r))
    r = call("GET", "/admin/users", token=a2["access_token"])
    check("demoted admin's token refused at once at /admin/users (401 invalid_token or 403)",
          is_err(r, 401, "invalid_token") or is_err(r, 403, "insufficient_permissions"), _short(r))
    # disable / delete
    de, dp, du = register()
    db_ = login_ok(de, dp)
    r = call("PATCH", f"/admin/users/{du['id']}", token=adm, json={"disabled": True})
    check("PATCH disabled true -> 200 user object", r.status_code == 200 and body(r).get("disabled") is True, _short(r))
    r = call("GET", "/users/me", token=db_["access_token"])
    check_err("disabled user's access token 401 at once", r, 401, "invalid_token")
    r = call("POST", "/auth/refresh", json={"refresh_token": db_["refresh_token"]})
    check("disabled user's refresh -> 401 invalid_grant or 403 account_disabled",
          is_err(r, 401, "invalid_grant") or is_err(r, 403, "account_disabled"), _short(r))
    r = login(de, dp)
    check_err("disabled account login -> 403 account_disabled", r, 403, "account_disabled")
    r = login(de, "wrong" + dp, src="127.0.0.17")
    note("disabled account wrong password", _short(r)[:150])
    r = call("POST", "/oauth/token", data={"grant_type": "password", "username": de, "password": dp})
    note("disabled account password grant", _short(r)[:200])
    call("PATCH", f"/admin/users/{du['id']}", token=adm, json={"disabled": False})
    db2 = login_ok(de, dp)
    # disable while holding a live refresh -> refresh 403 account_disabled?
    call("PATCH", f"/admin/users/{du['id']}", token=adm, json={"disabled": True})
    r = call("POST", "/auth/refresh", json={"refresh_token": db2["refresh_token"]})
    note("refresh after disable (contract: 403 account_disabled at refresh; session ended by disable)", _short(r)[:200])
    r = call("PATCH", f"/admin/users/{du['id']}", token=adm, json={"disabled": "yes"})
    check("PATCH disabled non-bool -> 4xx", 400 <= r.status_code < 500, _short(r))
    r = call("DELETE", f"/admin/users/{du['id']}", token=adm)
    check("DELETE user 204", r.status_code == 204, _short(r))
    r = call("GET", f"/admin/users/{du['id']}", token=adm)
    check_err("deleted user -> 404", r, 404, "not_found")
    r = call("DELETE", f"/admin/users/{du['id']}", token=adm)
    check_err("DELETE deleted user -> 404", r, 404, "not_found")
    # admin sessions
    se, sp, su = register()
    s1 = login_ok(se, sp)
    r = call("GET", f"/admin/users/{su['id']}/sessions", token=adm)
    ss = (body(r) or {}).get("sessions", [])
    check("GET /admin/users/<id>/sessions", r.status_code == 200 and any(x["id"] == s1["session_id"] for x in ss), _short(r))
    r = call("DELETE", f"/admin/users/{su['id']}/sessions", token=adm)
    check("DELETE /admin/users/<id>/sessions 204", r.status_code == 204, _short(r))
    r = call("GET", "/users/me", token=s1["access_token"])
    check_err("revoked sessions' tokens 401 at once", r, 401, "invalid_token")
    # last admin
    aid = _admin_id(adm)
    # count enabled admins: main admin + any other admins made in other sections
    r = call("GET", "/admin/users?limit=200", token=adm)
    admins = [x for x in body(r)["users"] if "admin" in x["roles"] and not x["disabled"]]
    for x in admins:
        if x["id"] != aid:
            call("PUT", f"/admin/users/{x['id']}/roles", token=adm, json={"roles": ["user"]})
    r = call("PUT", f"/admin/users/{aid}/roles", token=adm, json={"roles": ["user"]})
    check_err("last admin cannot be demoted -> 409", r, 409, "conflict")
    r = call("PATCH", f"/admin/users/{aid}", token=adm, json={"disabled": True})
    check_err("last admin cannot be disabled -> 409", r, 409, "conflict")
    r = call("DELETE", f"/admin/users/{aid}", token=adm)
    check_err("last admin cannot be deleted -> 409", r, 409, "conflict")
    r = call("GET", "/admin/audit?limit=200", token=adm)
    evs = {x["event"] for x in (body(r) or {}).get("events", [])}
    want = {"login_succeeded", "login_failed", "logout", "password_changed", "roles_changed", "user_disabled",
            "user_deleted", "sessions_revoked"}
    check("audit has the required events (last 200)", want <= evs, want - evs)
    r = call("GET", "/admin/audit?event=login_failed&limit=3", token=adm)
    ev = (body(r) or {}).get("events", [])
    check("audit filter event= and limit", r.status_code == 200 and 0 < len(ev) <= 3 and all(x["event"] == "login_failed" for x in ev), _short(r))
    check("audit detail holds no password", "Pw-" not in r.text, r.text[:300])


def _admin_id(adm):
    if "admin_id" not in STATE:
        STATE["admin_id"] = decode(adm)["sub"]
    return STATE["admin_id"]


def sec_throttle():
    e, p, u = register()
    # sequential: 5 failures from .20 then 429
    rs = [login(e, "bad" + p, src="127.0.0.20") for _ in range(5)]
    check("5 wrong passwords from one address -> 401 each", all(is_err(x, 401, "invalid_credentials") for x in rs),
          [x.status_code for x in rs])
    r = login(e, p, src="127.0.0.20")
    ra = r.headers.get("retry-after", "")
    check("6th attempt (right password) from same address -> 429 too_many_requests + Retry-After",
          is_err(r, 429, "too_many_requests") and ra.isdigit() and int(ra) >= 1, _short(r))
    r = login(e, p, src="127.0.0.21")
    check("owner from another address logs in (200)", r.status_code == 200, _short(r))
    # X-Forwarded-For / X-Real-IP ignored by default
    e2, p2, _ = register()
    for i in range(5):
        login(e2, "bad" + p2, src="127.0.0.22", headers={"X-Real-IP": f"10.9.9.{i}", "X-Forwarded-For": f"10.8.8.{i}"})
    r = login(e2, "bad" + p2, src="127.0.0.22", headers={"X-Real-IP": "10.9.9.99", "X-Forwarded-For": "10.8.8.99"})
    check("X-Real-IP/X-Forwarded-For do not change the client address (429)", r.status_code == 429, _short(r))
    # concurrent wrong passwords from one address
    e3, p3, _ = register()
    with cf.ThreadPoolExecutor(20) as ex:
        rs = list(ex.map(lambda _: login(e3, "bad" + p3, src="127.0.0.23"), range(20)))
    codes = [x.status_code for x in rs]
    check("20 concurrent wrong passwords one address: <= 5 reach check (401), rest 429",
          codes.count(401) <= 5 and codes.count(401) + codes.count(429) == 20, sorted(codes))
    check("all 429 carry Retry-After", all(x.headers.get("retry-after", "").isdigit() for x in rs if x.status_code == 429),
          [x.headers.get("retry-after") for x in rs if x.status_code == 429][:5])
    # concurrent with httpx local_address
    e4, p4, _ = register()

    def hx(addr):
        with httpx.Client(transport=httpx.HTTPTransport(local_address=addr), timeout=30) as c:
            return c.post(BASE + "/auth/login", json={"email": e4, "password": "bad" + p4})
    with cf.ThreadPoolExecutor(12) as ex:
        rs = list(ex.map(lambda i: hx("127.0.0.24"), range(12)))
    codes = [x.status_code for x in rs]
    check("httpx 12 concurrent wrong passwords (local_address): <= 5 x 401", codes.count(401) <= 5, sorted(codes))
    # account-wide threshold 50 from many addresses
    e5, p5, _ = register()
    addrs = [f"127.0.1.{i}" for i in range(1, 13)]
    fails = 0
    codes = []
    for i in range(60):
        a = addrs[i % len(addrs)]
        r = login(e5, "bad" + p5, src=a)
        codes.append(r.status_code)
    n401 = codes.count(401)
    check("account-wide: at most 50 failures reach the check across addresses", n401 <= 50, f"401s={n401} codes={codes}")
    r = login(e5, p5, src="127.0.1.200")
    check("account-wide threshold reached: owner from a fresh address -> 429", is_err(r, 429, "too_many_requests"), _short(r))
    note("account-wide codes sequence", "".join("F" if c == 401 else ("T" if c == 429 else "?") for c in codes))
    # concurrent over many addresses
    e6, p6, _ = register()
    with cf.ThreadPoolExecutor(30) as ex:
        rs = list(ex.map(lambda i: login(e6, "bad" + p6, src=f"127.0.2.{i % 15 + 1}"), range(90)))
    codes = [x.status_code for x in rs]
    check("90 concurrent wrong passwords over 15 addresses: <= 50 reach the check", codes.count(401) <= 50,
          f"401={codes.count(401)} 429={codes.count(429)} other={[c for c in codes if c not in (401, 429)]}")
    # per-address tolerance: 40 failures in a minute from one address across different accounts
    codes = []
    for i in range(40):
        codes.append(login(email("nx"), "whatever-" + str(i), src="127.0.0.30").status_code)
    check("per-address: 40 failures/min over distinct accounts from one address not throttled",
          codes.count(429) == 0, codes)
    # 40 typos across real accounts from one address, then a real login from it
    es = [register() for _ in range(3)]
    codes = []
    for i in range(30):
        ee, pp, _ = es[i % 3]
        codes.append(login(ee, "typo" + pp, src="127.0.0.31").status_code)
    note("30 typos over 3 accounts from one address", codes)
    ee, pp, _ = register()
    r = login(ee, pp, src="127.0.0.31")
    check("after ~30 failures from an address, another account still logs in from it", r.status_code == 200, _short(r))
    # password change concurrency
    e7, p7, _ = register()
    t7 = login_ok(e7, p7, src="127.0.0.33")["access_token"]
    with cf.ThreadPoolExecutor(15) as ex:
        rs = list(ex.map(lambda _: call("PUT", "/users/me/password", token=t7, src="127.0.0.33",
                                        json={"current_password": "bad" + p7, "new_password": pw()}), range(15)))
    codes = [x.status_code for x in rs]
    check("15 concurrent wrong current_password: <= 5 x 401, rest 429", codes.count(401) <= 5 and
          codes.count(401) + codes.count(429) == 15, sorted(codes))
    # password grant throttled too
    e8, p8, _ = register()
    for _ in range(5):
        call("POST", "/oauth/token", data={"grant_type": "password", "username": e8, "password": "bad"}, src="127.0.0.34")
    r = call("POST", "/oauth/token", data={"grant_type": "password", "username": e8, "password": p8}, src="127.0.0.34")
    check("password grant throttled -> 429 too_many_requests + Retry-After",
          is_err(r, 429, "too_many_requests") and r.headers.get("retry-after", "").isdigit(), _short(r))
    # after backoff expires, a correct login works; success clears counter
    ra = int(r.headers.get("retry-after", "1") or 1)
    time.sleep(ra + 0.2)
    r = call("POST", "/oauth/token", data={"grant_type": "password", "username": e8, "password": p8}, src="127.0.0.34")
    check("after Retry-After elapses the correct password works", r.status_code == 200, _short(r))
    # throttling counts unknown emails: 5 fails on unknown email -> 429 as for real account
    ue = email("ghost")
    for _ in range(5):
        login(ue, "bad-password", src="127.0.0.35")
    r = login(ue, "bad-password", src="127.0.0.35")
    check("unknown email throttled like a real one (429 after 5)", r.status_code == 429, _short(r))


def sec_session_cap():
    a = Aux("{max_sessions_per_user=3}")
    try:
        e, p, u = register(base=a.base)
        bs = [login_ok(e, p, base=a.base) for _ in range(3)]
        # use sessions 1 and 2 so session 0 is LRU
        time.sleep(1.1)
        for b in bs[1:]:
            call("POST", "/auth/refresh", base=a.base, json={"refresh_token": b["refresh_token"]})
        b4 = login_ok(e, p, base=a.base)
        r = call("GET", "/auth/sessions", base=a.base, token=b4["access_token"])
        ids = {x["id"] for x in body(r)["sessions"]}
        check("session cap: 3 live sessions after 4th login", len(ids) == 3, ids)
        check("session cap: LRU session ended", bs[0]["session_id"] not in ids, ids)
        r = call("GET", "/users/me", base=a.base, token=bs[0]["access_token"])
        check_err("session cap: evicted session's access token 401", r, 401, "invalid_token")
    finally:
        a.stop()


def sec_hs256():
    secret = "s3cr3t-" + uuid.uuid4().hex + uuid.uuid4().hex
    a = Aux('{secret="%s"}' % secret)
    try:
        r = call("GET", "/.well-known/jwks.json", base=a.base)
        check("HS256: JWKS is {keys:[]}", r.status_code == 200 and body(r) == {"keys": []}, _short(r))
        e, p, u = register(base=a.base)
        b = login_ok(e, p, base=a.base)
        tok = b["access_token"]
        hdr = jwt.get_unverified_header(tok)
        check("HS256: alg HS256, typ at+jwt, kid present", hdr.get("alg") == "HS256" and hdr.get("typ") == "at+jwt" and hdr.get("kid"), hdr)
        c = jwt.decode(tok, secret, algorithms=["HS256"], audience="portcullis", issuer=a.base.rstrip("/"))
        check("HS256: PyJWT verifies with the secret", c["sub"] == u["id"], c)

        def forge(claims=None, headers=None, key=secret, alg="HS256"):
            cl = dict(c)
            cl.update(claims or {})
            h = {"typ": "at+jwt", "kid": hdr.get("kid")}
            h.update(headers or {})
            h = {k: v for k, v in h.items() if v is not None}
            return jwt.encode(cl, key, algorithm=alg, headers=h)
        r = call("GET", "/users/me", base=a.base, token=forge())
        check("HS256: re-signed identical token accepted (sanity)", r.status_code == 200, _short(r))
        cases = {
            "crit unknown param": forge(headers={"crit": ["exp-x"], "exp-x": 1}),
            "crit empty list": forge(headers={"crit": []}),
            "wrong aud": forge({"aud": "other"}),
            "aud list without portcullis": forge({"aud": ["other"]}),
            "wrong iss": forge({"iss": "evil"}),
            "typ JWT": forge(headers={"typ": "JWT"}),
            "no typ": forge(headers={"typ": None}),
            "expired": forge({"exp": int(time.time()) - 5, "iat": int(time.time()) - 100}),
            "missing sid": forge({"sid": None}),
            "missing exp": forge({"exp": None}),
            "wrong key": forge(key="x" * 40),
            "unknown kid": forge(headers={"kid": "nope"}),
        }
        for k in ("missing sid", "missing exp"):
            cl = dict(c)
            cl.pop(k.split()[1])
            cases[k] = jwt.encode(cl, secret, algorithm="HS256", headers={"typ": "at+jwt", "kid": hdr.get("kid")})
        for k, t in cases.items():
            r = call("GET", "/users/me", base=a.base, token=t)
            check_err(f"HS256: {k} -> 401 invalid_token", r, 401, "invalid_token")
        r = call("GET", "/users/me", base=a.base, token=forge({"sid": str(uuid.uuid4())}))
        note("HS256: validly signed token with sid of a never-existing session", _short(r)[:80])
        r = call("GET", "/users/me", base=a.base, token=forge(headers={"typ": "application/at+jwt"}))
        note("HS256: typ 'application/at+jwt' (RFC 9068 §4 says resource servers accept it)", _short(r)[:200])
        r = call("GET", "/users/me", base=a.base, token=forge({"aud": ["portcullis", "other"]}))
        note("HS256: aud as list containing portcullis", _short(r)[:120])
        # alg none with HS256 server
        t_none = jwt.encode(c, None, algorithm="none", headers={"typ": "at+jwt", "kid": hdr.get("kid")})
        r = call("GET", "/users/me", base=a.base, token=t_none)
        check_err("HS256: alg none -> 401", r, 401, "invalid_token")
        # user create CLI refuses common password
        out = cli(["user", "create", "--email", email(), "--password-stdin"], a.db, stdin="password1\n", extra_env=a.auth_env())
        check("CLI user create refuses common password (non-zero exit, names password)",
              out.returncode != 0 and "password" in (out.stderr + out.stdout).lower(), out.stderr + out.stdout)
    finally:
        a.stop()
    for bad in ("changeme", "short"):
        d = tempfile.mkdtemp()
        out = subprocess.run([BIN, "serve"], cwd=d, capture_output=True, text=True, timeout=20, env=dict(
            os.environ, ROCKET_PORT=str(AUX_PORT + 39), ROCKET_AUTH='{secret="%s"}' % bad,
            ROCKET_DATABASES='{main={url="%s/x.db"}}' % d))
        check(f"secret={bad!r} stops start-up naming auth.secret", out.returncode != 0 and "auth.secret" in out.stderr + out.stdout,
              (out.stderr + out.stdout)[-300:])
        shutil.rmtree(d, ignore_errors=True)


def sec_registration_closed():
    a = Aux('{registration="closed"}')
    try:
        r = call("POST", "/auth/register", base=a.base, json={"email": email(), "password": pw()})
        check_err("registration closed -> 403 insufficient_permissions", r, 403, "insufficient_permissions")
    finally:
        a.stop()


def sec_metrics():
    adm = admin_token()
    r = call("GET", "/metrics")
    check_err("/metrics without token -> 401", r, 401, "invalid_token")
    check("/metrics without token WWW-Authenticate: Bearer", r.headers.get("www-authenticate", "").startswith("Bearer"), _short(r))
    e, p, u = register()
    r = call("GET", "/metrics", token=login_ok(e, p)["access_token"])
    check_err("/metrics as plain user -> 403", r, 403, "insufficient_permissions")
    r = call("GET", "/metrics", token=adm)
    check("/metrics as admin -> 200 text/plain; version=0.0.4", r.status_code == 200 and
          r.headers.get("content-type", "").startswith("text/plain") and "0.0.4" in r.headers.get("content-type", ""), _short(r))
    fams = {}
    try:
        for f in text_string_to_metric_families(r.text):
            fams[f.name] = f
        check("prometheus_client parses the exposition", True)
    except Exception as ex:
        check("prometheus_client parses the exposition", False, repr(ex))
    want = {"portcullis_http_requests": "counter", "portcullis_http_request_duration_seconds": "histogram",
            "portcullis_logins": "counter", "portcullis_refreshes": "counter",
            "portcullis_refresh_reuse_detected": "counter", "portcullis_sessions_ended": "counter",
            "portcullis_password_hash_queue_depth": "gauge", "portcullis_db_pool_connections": "gauge",
            "process_resident_memory_bytes": "gauge", "process_start_time_seconds": "gauge"}
    for n, t in want.items():
        f = fams.get(n)
        check(f"metric {n} ({t})", f is not None and f.type == t, f and f.type)
    lab = set()
    for f in fams.values():
        for s in f.samples:
            for k, v in s.labels.items():
                lab.add(v)
                if UUID_RE.match(v) or "@" in v:
                    check(f"label value bounded ({f.name} {k}={v})", False, v)
    routes = {s.labels.get("route") for s in fams.get("portcullis_http_requests", type("x", (), {"samples": []})).samples}
    check("http_requests route labels are templates (no raw ids)", not any(r and re.search(r"[0-9a-f]{8}-", r) for r in routes), routes)
    check("unmatched route label used for 404s", "unmatched" in routes, routes)
    statuses = {s.labels.get("status") for s in fams.get("portcullis_http_requests").samples} if "portcullis_http_requests" in fams else set()
    check("status labels are classes", statuses and all(re.match(r"^[1-5]xx$", s or "") for s in statuses), statuses)
    outcomes = {s.labels.get("outcome") for s in fams["portcullis_logins"].samples} if "portcullis_logins" in fams else set()
    check("logins outcomes include succeeded/failed/throttled/mfa_required", {"succeeded", "failed"} <= outcomes, outcomes)
    # Prometheus-like client-credentials scrape
    cid, csec = STATE.get("metrics_client") or cli_client(MAIN_DB, "prometheus", ["metrics:read"])[:2]
    s = OAuth2Session(client_id=cid, client_secret=csec, token_endpoint_auth_method="client_secret_basic")
    t = s.fetch_token(metadata()["token_endpoint"], grant_type="client_credentials")
    rr = s.get(BASE + "/metrics")
    check("client-credentials client with metrics:read scrapes /metrics (authlib session)", rr.status_code == 200, _short(rr))
    # prometheus sends client_id/secret via basic with url-encoding and scope param empty? also sends Accept header
    rr = call("GET", "/metrics", token=t["access_token"], headers={
        "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"})
    check("/metrics with Prometheus Accept header -> 200 parseable", rr.status_code == 200 and
          list(text_string_to_metric_families(rr.text)), _short(rr)[:200])
    # Prometheus oauth2 sends grant_type=client_credentials with basic auth and no scope; already covered.


def sec_grace_boundary():
    """Contract: a spent token presented MORE than reuse_grace after its exchange is theft."""
    a = Aux("{reuse_grace=1}")
    try:
        e, p, u = register(base=a.base)
        accepted = []
        for d in (1.35, 1.5, 1.65, 1.8, 1.95, 1.5):
            b = login_ok(e, p, base=a.base)
            t0 = time.time()
            r = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": b["refresh_token"]})
            t1 = time.time()
            time.sleep(max(0.0, d - (time.time() - t1)))
            r = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": b["refresh_token"]})
            el = time.time() - t1
            if r.status_code == 200:
                accepted.append(round(el, 2))
        check("reuse_grace=1: every replay >1.3 s after the exchange is refused (401 invalid_grant)", not accepted,
              f"replays accepted {accepted} s after the exchange (whole-second truncation?)")
        # within grace, an older generation (gen0 after gen0->gen1->gen2 at once)
    finally:
        a.stop()
    a = Aux("{reuse_grace=3}")
    try:
        e, p, u = register(base=a.base)
        b = login_ok(e, p, base=a.base)
        g1 = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": b["refresh_token"]}).json()
        g2 = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": g1["refresh_token"]}).json()
        r = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": b["refresh_token"]})
        check("within grace: gen0 replayed after gen0->gen1->gen2 succeeds (contract rule 2)", r.status_code == 200, _short(r))
        r2 = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": g2["refresh_token"]})
        check("...and the newest chain continues", r2.status_code == 200, _short(r2))
        # thief/owner collision: both hold gen1 (thief via in-grace replay); owner continues; thief later -> theft
        b = login_ok(e, p, base=a.base)
        owner = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": b["refresh_token"]}).json()
        thief = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": b["refresh_token"]}).json()
        o2 = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": owner["refresh_token"]}).json()
        time.sleep(4.2)
        r = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": thief["refresh_token"]})
        check_err("thief's copy past grace -> 401 invalid_grant", r, 401, "invalid_grant")
        r = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": o2["refresh_token"]})
        check_err("...and owner's newest token is dead too", r, 401, "invalid_grant")
        r = call("GET", "/users/me", base=a.base, token=o2["access_token"])
        check_err("...and the session's access tokens", r, 401, "invalid_token")
        # reuse detection audited and counted
        e2, p2 = email("adm"), pw()
        cli_user(a.db, e2, p2, roles=["admin"], extra_env=a.auth_env())
        at = login_ok(e2, p2, base=a.base)["access_token"]
        r = call("GET", f"/admin/audit?user_id={u['id']}&event=refresh_reuse_detected", base=a.base, token=at)
        check("audit refresh_reuse_detected", r.status_code == 200 and body(r)["events"], _short(r))
        mt = call("GET", "/metrics", base=a.base, token=at).text
        v = [s_.value for f in text_string_to_metric_families(mt) if f.name == "portcullis_refresh_reuse_detected" for s_ in f.samples if s_.name.endswith("_total")]
        check("portcullis_refresh_reuse_detected_total >= 1", v and v[0] >= 1, v)
    finally:
        a.stop()


def sec_limits():
    a = Aux("{}")
    try:
        e, p = email("adm"), pw()
        cli_user(a.db, e, p, roles=["admin"])
        at = login_ok(e, p, base=a.base)["access_token"]
        uid = decode_any(at)["sub"]
        with cf.ThreadPoolExecutor(4) as ex:
            list(ex.map(lambda _: register(base=a.base), range(215)))
        r = call("GET", "/admin/users", base=a.base, token=at)
        check("GET /admin/users default limit 50", r.status_code == 200 and len(body(r)["users"]) == 50 and body(r)["total"] == 216, _short(r)[:120])
        r = call("GET", "/admin/users?limit=1000", base=a.base, token=at)
        check("GET /admin/users?limit=1000 returns at most 200 (or 4xx)", (r.status_code == 200 and len(body(r)["users"]) <= 200)
              or 400 <= r.status_code < 500, f"{r.status_code} n={len((body(r) or {}).get('users', []))}")
        r1 = call("GET", "/admin/users?limit=5&offset=0", base=a.base, token=at).json()["users"]
        r2 = call("GET", "/admin/users?limit=5&offset=5", base=a.base, token=at).json()["users"]
        check("GET /admin/users offset pages disjoint", not ({x["id"] for x in r1} & {x["id"] for x in r2}), "")
        us = call("GET", "/admin/users?limit=200", base=a.base, token=at).json()["users"]
        def fail_login(i):
            return login(us[i]["email"], "wrong-password-x", base=a.base, src=f"127.0.3.{i % 200 + 1}").status_code
        with cf.ThreadPoolExecutor(4) as ex:
            list(ex.map(fail_login, range(len(us))))
        r = call("GET", "/admin/audit?limit=1000", base=a.base, token=at)
        check("GET /admin/audit?limit=1000 returns at most 200 (or 4xx)", (r.status_code == 200 and len(body(r)["events"]) <= 200)
              or 400 <= r.status_code < 500, f"{r.status_code} n={len((body(r) or {}).get('events', []))}")
        r = call("GET", "/admin/audit", base=a.base, token=at)
        check("GET /admin/audit default limit 50", r.status_code == 200 and len(body(r)["events"]) == 50, f"n={len(body(r)['events'])}")
        for i in range(60):
            login_ok(e, p, base=a.base)
        for path in ("/auth/sessions", f"/admin/users/{uid}/sessions"):
            r = call("GET", path, base=a.base, token=at)
            n = len((body(r) or {}).get("sessions", []))
            check(f"GET {path} default limit 50 (user has 61 sessions)", n == 50, f"returned {n}")
            r = call("GET", path + "?limit=2&offset=1", base=a.base, token=at)
            n = len((body(r) or {}).get("sessions", []))
            check(f"GET {path}?limit=2&offset=1 returns 2", n == 2, f"returned {n}")
        r = call("GET", "/admin/roles?limit=1", base=a.base, token=at)
        note("GET /admin/roles?limit=1", f"returned {len(body(r)['roles'])} roles")
        r = call("GET", "/admin/clients?limit=1", base=a.base, token=at)
        note("GET /admin/clients?limit=1", _short(r)[:100])
    finally:
        a.stop()


def decode_any(tok):
    return jwt.decode(tok, options={"verify_signature": False})


def sec_keys():
    a = Aux("{access_ttl=60}")
    try:
        e, p, u = register(base=a.base)
        b = login_ok(e, p, base=a.base)
        meta = requests.get(a.base + "/.well-known/oauth-authorization-server").json()
        jc = jwt.PyJWKClient(meta["jwks_uri"], cache_keys=True)
        k1 = jwt.get_unverified_header(b["access_token"])["kid"]
        jwt.decode(b["access_token"], jc.get_signing_key_from_jwt(b["access_token"]).key, algorithms=["EdDSA"], audience="portcullis")
        out = cli(["keys", "rotate"], a.db)
        check("portcullis keys rotate exits 0", out.returncode == 0, out.stderr + out.stdout)
        time.sleep(0.6)
        b2 = login_ok(e, p, base=a.base)
        k2 = jwt.get_unverified_header(b2["access_token"])["kid"]
        check("after rotate new tokens carry a new kid (running instance picked it up)", k2 != k1, (k1, k2))
        kids = {k["kid"] for k in requests.get(meta["jwks_uri"]).json()["keys"]}
        check("JWKS lists old and new key", {k1, k2} <= kids, kids)
        try:
            jc = jwt.PyJWKClient(meta["jwks_uri"])  # PyJWT 2.15 has a refetch cooldown; use a fresh client
            jwt.decode(b2["access_token"], jc.get_signing_key_from_jwt(b2["access_token"]).key, algorithms=["EdDSA"],
                       audience="portcullis", issuer=meta["issuer"])
            check("PyJWKClient (cached) verifies token signed by the new key (refetch on unknown kid)", True)
        except Exception as ex:
            check("PyJWKClient verifies token signed by the new key", False, repr(ex))
        r = call("GET", "/users/me", base=a.base, token=b["access_token"])
        check("old-key token still accepted after rotation", r.status_code == 200, _short(r))
    finally:
        a.stop()


def sec_misc():
    m = metadata()
    adm = admin_token()
    # disabled account at the refresh grant / oauth token
    e, p, u = register()
    tr = call("POST", "/oauth/token", data={"grant_type": "password", "username": e, "password": p}).json()
    call("PATCH", f"/admin/users/{u['id']}", token=adm, json={"disabled": True})
    r = call("POST", "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": tr["refresh_token"]})
    note("refresh grant after account disabled", _short(r)[:200])
    r = call("POST", "/oauth/token", data={"grant_type": "password", "username": e, "password": p})
    note("password grant of disabled account (contract: 403 account_disabled at login; OAuth: 400 codes)", _short(r)[:200])
    # introspect spent refresh token (exchanged once)
    cid, csec = STATE.get("metrics_client") or cli_client(MAIN_DB, "intro", ["users:read", "tokens:introspect"])[:2]
    e, p, u = register()
    b = login_ok(e, p)
    n = call("POST", "/auth/refresh", json={"refresh_token": b["refresh_token"]}).json()
    r = call("POST", "/oauth/introspect", data={"token": b["refresh_token"]}, auth=(cid, csec))
    note("introspect a spent (exchanged) refresh token (contract: active only for a live token)", _short(r)[:200])
    r = call("POST", "/oauth/introspect", data={"token": n["refresh_token"]}, auth=(cid, csec))
    check("introspect current refresh token active", body(r).get("active") is True, _short(r))
    # revoke with bad client credentials
    r = call("POST", "/oauth/revoke", data={"token": "x"}, auth=(cid, "bad"))
    note("revoke with wrong Basic client credentials", _short(r)[:200])
    # introspect with a user access token as bearer (not client auth)
    r = call("POST", "/oauth/introspect", data={"token": n["access_token"]}, token=n["access_token"])
    check_err("introspect with bearer user token instead of client auth -> 401 invalid_client", r, 401, "invalid_client")
    # token endpoint: Basic client auth plus password grant
    r = call("POST", "/oauth/token", data={"grant_type": "password", "username": e, "password": p}, auth=(cid, "bad"))
    check_err("password grant with wrong Basic client credentials -> 401 invalid_client", r, 401, "invalid_client")
    r = call("POST", "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": n["refresh_token"],
                                           "client_id": cid, "client_secret": "bad"})
    check_err("refresh grant with wrong client_secret_post credentials -> 401 invalid_client", r, 401, "invalid_client")
    try:
        t = OAuth2Session(client_id=cid, client_secret="bad").fetch_token(m["token_endpoint"], grant_type="password",
                                                                          username=e, password=p)
        check("authlib password grant with a wrong client secret raises invalid_client", False, f"got tokens: {list(t)}")
    except AuthlibBaseError as ex:
        check("authlib password grant with a wrong client secret raises invalid_client", ex.error == "invalid_client", repr(ex))
    # refresh token for another flow: refresh token of MFA flow etc. skip
    # unknown token_type_hint at introspection
    r = call("POST", "/oauth/introspect", data={"token": n["access_token"], "token_type_hint": "refresh_token"}, auth=(cid, csec))
    check("introspect with wrong token_type_hint still finds the token (RFC 7662 §2.1)", body(r).get("active") is True, _short(r))
    r = call("POST", "/oauth/token", data={"grant_type": "client_credentials"}, auth=(cid, csec))
    check("client_credentials response Cache-Control no-store", r.status_code == 200 and "no-store" in r.headers.get("cache-control", ""), _short(r))
    r = call("POST", "/admin/clients", token=adm, json={"name": "cc-hdr", "permissions": []})
    check("POST /admin/clients (carries a secret) Cache-Control no-store", "no-store" in r.headers.get("cache-control", ""), _short(r))
    r = call("GET", "/.well-known/oauth-authorization-server")
    check("metadata issuer equals the tokens' iss", body(r).get("issuer") == decode_any(n["access_token"])["iss"], _short(r)[:100])
    # HEAD/OPTIONS on endpoints
    r = call("GET", "/auth/login")
    check("GET /auth/login (wrong method) -> 4xx JSON", 400 <= r.status_code < 500 and "error" in (body(r) or {}), _short(r))
    r = call("DELETE", "/auth/sessions/" + str(uuid.uuid4()), token=n["access_token"])
    check_err("DELETE unknown session id -> 404", r, 404, "not_found")


def sec_postgres():
    dbname = "rc_check_" + uuid.uuid4().hex[:8]
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f"CREATE DATABASE {dbname}"], check=True, capture_output=True)
    url = f"postgres://postgres@127.0.0.1:5432/{dbname}"
    a = b_ = None
    try:
        a = Aux("{reuse_grace=1}", db_url=url)
        b_ = Aux("{reuse_grace=1}", db_url=url)
        e, p = email("pgadm"), pw()
        cli_user(url, e, p, roles=["admin"], extra_env=a.auth_env())
        adm = login_ok(e, p, base=a.base)["access_token"]
        eu, pu, u = register(base=a.base)
        s = login_ok(eu, pu, base=a.base)
        r = call("GET", "/users/me", base=b_.base, token=s["access_token"])
        check("PG: token from instance A accepted on B (shared key)", r.status_code == 200, _short(r))
        call("POST", "/auth/logout", base=a.base, token=s["access_token"])
        t0 = time.time()
        while time.time() - t0 < 3:
            r = call("GET", "/users/me", base=b_.base, token=s["access_token"])
            if r.status_code == 401:
                break
            time.sleep(0.02)
        dt = time.time() - t0
        check("PG: logout on A rejected on B within 1 s", r.status_code == 401 and dt < 1.0, f"{r.status_code} after {dt:.3f}s")
        # role removal across instances
        rn = "pgrole-" + uuid.uuid4().hex[:4]
        call("POST", "/admin/roles", base=a.base, token=adm, json={"name": rn, "description": "x", "permissions": ["users:read"]})
        call("PUT", f"/admin/users/{u['id']}/roles", base=a.base, token=adm, json={"roles": ["user", rn]})
        s = login_ok(eu, pu, base=a.base)
        r = call("GET", "/admin/users", base=b_.base, token=s["access_token"])
        check("PG: new role works on B", r.status_code == 200, _short(r))
        call("PUT", f"/admin/users/{u['id']}/roles", base=a.base, token=adm, json={"roles": ["user"]})
        t0 = time.time()
        while time.time() - t0 < 3:
            r = call("GET", "/admin/users", base=b_.base, token=s["access_token"])
            if r.status_code in (401, 403):
                break
            time.sleep(0.02)
        dt = time.time() - t0
        check("PG: role removal on A applies on B within 1 s", r.status_code in (401, 403) and dt < 1.0, f"{r.status_code} after {dt:.3f}s")
        # permission removal from role across instances
        call("PUT", f"/admin/users/{u['id']}/roles", base=a.base, token=adm, json={"roles": ["user", rn]})
        s = login_ok(eu, pu, base=a.base)
        call("PUT", f"/admin/roles/{rn}", base=a.base, token=adm, json={"description": "x", "permissions": []})
        t0 = time.time()
        while time.time() - t0 < 3:
            r = call("GET", "/admin/users", base=b_.base, token=s["access_token"])
            if r.status_code in (401, 403):
                break
            time.sleep(0.02)
        dt = time.time() - t0
        check("PG: permission removal on A applies on B within 1 s", r.status_code in (401, 403) and dt < 1.0, f"{r.status_code} after {dt:.3f}s")
        # client deletion across instances
        rr = call("POST", "/admin/clients", base=a.base, token=adm, json={"name": "pgc", "permissions": ["users:read"]}).json()
        ct = call("POST", "/oauth/token", base=b_.base, data={"grant_type": "client_credentials"}, auth=(rr["client_id"], rr["client_secret"])).json()["access_token"]
        call("DELETE", f"/admin/clients/{rr['client_id']}", base=a.base, token=adm)
        t0 = time.time()
        while time.time() - t0 < 3:
            r = call("GET", "/admin/users", base=b_.base, token=ct)
            if r.status_code == 401:
                break
            time.sleep(0.02)
        dt = time.time() - t0
        check("PG: deleted client's token rejected on B within 1 s", r.status_code == 401 and dt < 1.0, f"{r.status_code} after {dt:.3f}s")
        # throttling shared across instances, concurrent on both
        et, pt, _ = register(base=a.base)
        def attempt(i):
            base = a.base if i % 2 else b_.base
            return login(et, "bad" + pt, base=base, src="127.0.0.40").status_code
        with cf.ThreadPoolExecutor(16) as ex:
            codes = list(ex.map(attempt, range(16)))
        check("PG: 16 concurrent wrong passwords over 2 instances: <= 5 reach the check", codes.count(401) <= 5, sorted(codes))
        # reuse_grace=0-like: concurrent refresh over two instances, exactly one successor chain
        s = login_ok(eu, pu, base=a.base)
        def rf(i):
            return call("POST", "/auth/refresh", base=a.base if i % 2 else b_.base, json={"refresh_token": s["refresh_token"]})
        with cf.ThreadPoolExecutor(8) as ex:
            rs = list(ex.map(rf, range(8)))
        succ = {x.json()["refresh_token"] for x in rs if x.status_code == 200}
        check("PG: 8 concurrent refreshes over 2 instances within grace -> one successor", len(succ) == 1,
              f"{[x.status_code for x in rs]} successors={len(succ)}")
        # grace boundary on PG too
        acc = []
        for d in (1.5, 1.8, 1.95):
            s = login_ok(eu, pu, base=a.base)
            call("POST", "/auth/refresh", base=a.base, json={"refresh_token": s["refresh_token"]})
            t1 = time.time()
            time.sleep(d)
            r = call("POST", "/auth/refresh", base=b_.base, json={"refresh_token": s["refresh_token"]})
            if r.status_code == 200:
                acc.append(round(time.time() - t1, 2))
        check("PG reuse_grace=1: replays 1.5-1.95 s after exchange refused", not acc, f"accepted after {acc} s")
        # hostile input on PostgreSQL
        hostile = [
            ("POST", "/auth/register", '{"email":"a\\u0000b@example.com","password":"%s"}' % pw()),
            ("POST", "/auth/register", '{"email":"a\\ud800b@example.com","password":"%s"}' % pw()),
            ("POST", "/auth/login", '{"email":"a\\u0000b@example.com","password":"whatever12"}'),
            ("POST", "/auth/login", '{"email":"%s","password":"what\\u0000ever12"}' % eu),
            ("POST", "/admin/roles", '{"name":"r\\u0000x","description":"d","permissions":[]}'),
            ("POST", "/admin/roles", '{"name":"rx%s","description":"d\\u0000","permissions":[]}' % uuid.uuid4().hex[:4]),
            ("POST", "/admin/roles", '{"name":"ry%s","description":"d\\udc00","permissions":[]}' % uuid.uuid4().hex[:4]),
            ("POST", "/admin/clients", '{"name":"c\\u0000","permissions":[]}'),
            ("POST", "/admin/clients", '{"name":"c\\ud800","permissions":[]}'),
            ("PUT", f"/admin/users/{u['id']}/roles", '{"roles":["user\\u0000"]}'),
            ("POST", "/auth/refresh", '{"refresh_token":"ab\\u0000cd"}'),
            ("POST", "/auth/mfa/verify", '{"mfa_token":"ab\\u0000cd","code":"123456"}'),
            ("PUT", "/admin/roles/x%00y", '{"description":"d","permissions":[]}'),
            ("DELETE", "/admin/roles/x%00y", None),
            ("GET", "/admin/users?email=a%00b", None),
            ("GET", "/admin/audit?event=a%00b", None),
            ("GET", "/admin/users?email=" + "x" * 5000, None),
            ("GET", "/admin/audit?user_id=nope", None),
        ]
        for meth, path, raw in hostile:
            r = call(meth, path, base=a.base, token=adm, data=raw.encode() if raw else None,
                     headers={"Content-Type": "application/json"} if raw else None, src="127.0.0.41")
            check(f"PG hostile {meth} {path[:40]} {(raw or '')[:45]!r} -> not 5xx (JSON)", r.status_code < 500 and body(r) is not None,
                  _short(r)[:200])
        r = call("POST", "/oauth/token", base=a.base, data={"grant_type": "password", "username": "a\x00b@x.com", "password": "whatever12"}, src="127.0.0.41")
        check("PG hostile form NUL in username -> 4xx", 400 <= r.status_code < 500, _short(r))
        r = call("POST", "/oauth/token", base=a.base, data={"grant_type": "client_credentials", "client_id": "a\x00b", "client_secret": "x"}, src="127.0.0.41")
        check("PG hostile form NUL in client_id -> 401 invalid_client", is_err(r, 401, "invalid_client"), _short(r))
        r = call("POST", "/oauth/introspect", base=a.base, data={"token": "a\x00b", "client_id": rr["client_id"], "client_secret": "x"}, src="127.0.0.41")
        check("PG hostile introspect -> 4xx", 400 <= r.status_code < 500, _short(r))
        r = call("POST", "/oauth/revoke", base=a.base, data={"token": "a\x00b"}, src="127.0.0.41")
        check("PG hostile revoke NUL -> 200/4xx", r.status_code < 500, _short(r))
        r = call("GET", "/users/me", base=a.base, token=s["access_token"], headers={"User-Agent": "x" * 8000})
        r = call("POST", "/auth/login", base=a.base, json={"email": eu, "password": pu}, headers={"User-Agent": "\u00e9\u00e8".encode().decode("latin-1") + "y" * 9000}, src="127.0.0.42")
        check("PG login with 9 KB non-ASCII User-Agent -> 200 (stored truncated?)", r.status_code == 200, _short(r))
    finally:
        for x in (a, b_):
            if x:
                x.stop()
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"], capture_output=True)


SECTIONS = [
    ("ops", sec_ops), ("metadata", sec_metadata_jwks), ("accounts", sec_accounts), ("refresh", sec_refresh),
    ("grace", sec_refresh_grace), ("oauth", sec_oauth), ("clients", sec_clients), ("mfa", sec_mfa),
    ("mfaroles", sec_mfa_required_roles), ("admin", sec_admin), ("throttle", sec_throttle),
    ("cap", sec_session_cap), ("boundary", sec_grace_boundary), ("limits", sec_limits),
    ("keys", sec_keys), ("misc", sec_misc), ("postgres", sec_postgres), ("hs256", sec_hs256), ("closed", sec_registration_closed), ("metrics", sec_metrics),
]


def main():
    for name, fn in SECTIONS:
        if ONLY and name not in ONLY:
            continue
        print(f"\n=== {name}", flush=True)
        try:
            fn()
        except Exception:
            check(f"section {name} raised", False, traceback.format_exc()[-1500:])
    fails = [x for x in RESULTS if x[0] == "FAIL"]
    print(f"\n{sum(1 for x in RESULTS if x[0]=='PASS')} passed, {len(fails)} failed")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
