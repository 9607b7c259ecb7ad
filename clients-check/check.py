#!/usr/bin/env python3
"""Black-box check of a running Portcullis against the HTTP contract (version 3),
with the real client libraries: authlib, PyJWT, pyotp, prometheus_client, aiosmtpd (an SMTP sink)
and a software WebAuthn authenticator (SoftAuthenticator below). Sections marked "version 3" at
the end are written from the contract alone; the older ones were updated where version 3 changed
a rule.

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
import hashlib
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
import warnings
from email import message_from_bytes, policy as email_policy
from html.parser import HTMLParser

import httpx
import jwt
import pyotp
import requests
from requests.adapters import HTTPAdapter
from authlib.integrations.requests_client import OAuth2Session
from authlib.common.errors import AuthlibBaseError
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.common.security import generate_token
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # authlib.jose is deprecated in favour of joserfc, still what authlib clients use
    from authlib.jose import JsonWebKey, jwt as jose_jwt
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata
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


def login(e, p, base=None, src="127.0.0.1", json_extra=None, **kw):
    return call("POST", "/auth/login", base=base, json=dict({"email": e, "password": p}, **(json_extra or {})), src=src, **kw)


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
            "ROCKET_AUTH": auth_cfg.replace("%PORT%", str(self.port)),
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
        return {k: self.env[k] for k in ("ROCKET_AUTH", "ROCKET_MAIL") if k in self.env}

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
    # v3: the issuer is a URL; http is allowed on loopback hosts, which authlib accepts with its
    # AUTHLIB_INSECURE_TRANSPORT switch (RFC 8414 §2 otherwise wants https)
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    try:
        AuthorizationServerMetadata(m).validate()
        check("authlib AuthorizationServerMetadata.validate()", True)
    except Exception as ex:
        check("authlib AuthorizationServerMetadata.validate()", False, repr(ex))
    check("metadata issuer is the base URL (RFC 8414 §3.3)", m.get("issuer") == BASE, m.get("issuer"))
    r = call("GET", "/.well-known/jwks.json")
    keys = body(r).get("keys", []) if r.status_code == 200 else []
    # v3: the JWKS also lists the RSA ID-token keys; access tokens stay EdDSA
    okp = [k for k in keys if k.get("kty") == "OKP"]
    check("JWKS has one or more OKP Ed25519 keys with kid",
          okp and all(k.get("crv") == "Ed25519" and k.get("kid") for k in okp), _short(r))
    check("JWKS: every key is OKP Ed25519 or RSA (ID tokens), none symmetric",
          keys and all(k.get("kty") in ("OKP", "RSA") for k in keys), [k.get("kty") for k in keys])
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
    # v3: the authorization-code grant exists; an unknown code without a client is refused
    check("authorization_code with a made-up code, no client -> 400 invalid_grant/invalid_request or 401 invalid_client",
          is_err(r, 400, "invalid_grant") or is_err(r, 400, "invalid_request") or is_err(r, 401, "invalid_client"), _short(r))
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
    check_err("password grant with scope=users:read the user lacks -> 400 invalid_scope (v3)", r, 400, "invalid_scope")
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
              and j.get("token_type") == "Bearer" and j.get("token_use") == "access_token"  # v3, RFC 7662 §2.2
              and j.get("client_id") == "portcullis"
              and j.get("sub") == u["id"] and j.get("sid") == ut["session_id"]
              and j.get("roles") == ["user"] and all(k in j for k in ("exp", "iat", "iss", "aud")), j)
    except Exception as ex:
        check("introspect live user access token", False, repr(ex))
    rr = ins.introspect_token(m["introspection_endpoint"], token=ut["refresh_token"])
    j = rr.json()
    check("introspect refresh token -> active, token_use refresh_token", j.get("active") is True and j.get("token_use") == "refresh_token"
          and j.get("sub") == u["id"] and "exp" in j, j)
    rr = ins.introspect_token(m["introspection_endpoint"], token=ctok)
    j = rr.json()
    check("introspect client token -> active with client_id, scope, token_type Bearer", j.get("active") is True and j.get("client_id") == cid
          and j.get("token_type") == "Bearer" and j.get("token_use") == "access_token"
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
    # 5 wrong codes on a fresh account (the race above may have left one failure on e2's counter)
    e2b, p2b, _ = register()
    t2b = login_ok(e2b, p2b)["access_token"]
    tp2b = pyotp.TOTP(call("POST", "/auth/mfa/totp", token=t2b, json={"password": p2b}).json()["secret"])
    call("POST", "/auth/mfa/totp/confirm", token=t2b, json={"code": tp2b.now()})
    mt = login(e2b, p2b, src="127.0.0.13").json().get("mfa_token")
    good = tp2b.now()
    wrong = [str((int(good) + k * 111111) % 1000000).zfill(6) for k in range(1, 8)]
    wrong = [w for w in wrong if w not in (tp2b.at(time.time() - 30), tp2b.at(time.time() + 30), good)][:5]
    rs = [call("POST", "/auth/mfa/verify", json={"mfa_token": mt, "code": w}, src="127.0.0.13") for w in wrong]
    check("5 wrong codes -> 401 invalid_credentials each", all(is_err(x, 401, "invalid_credentials") for x in rs),
          [_short(x)[:100] for x in rs])
    # v3: the per-account second-factor counter has reached its limit: 429 wins over every other
    # answer of a second-factor endpoint (the dead mfa_token's 401 invalid_grant included), from any address
    r = call("POST", "/auth/mfa/verify", json={"mfa_token": mt, "code": tp2b.at(time.time() + 60)}, src="127.0.0.13")
    check("after 5 wrong codes the second-factor endpoints answer 429 + Retry-After (v3)",
          is_err(r, 429, "too_many_requests") and r.headers.get("retry-after", "").isdigit(), _short(r))
    mt2 = login(e2b, p2b, src="127.0.0.14").json().get("mfa_token")
    r = call("POST", "/auth/mfa/verify", json={"mfa_token": mt2, "code": tp2b.at(time.time() + 30)}, src="127.0.0.14")
    check_err("...from another address too, even with a fresh mfa_token and a correct code", r, 429, "too_many_requests")
    r = call("POST", "/auth/mfa/recovery-codes", token=t2b, json={"password": p2b, "code": tp2b.at(time.time() + 30)})
    check_err("...and at another second-factor endpoint (recovery-codes)", r, 429, "too_many_requests")
    # wrong codes count toward throttling: account+address now has 5 failures -> next login from .13 is 429
    r = login(e2b, p2b, src="127.0.0.13")
    check("after 5 wrong MFA codes, login from same address throttled (429 + Retry-After)",
          is_err(r, 429, "too_many_requests") and r.headers.get("retry-after", "").isdigit(), _short(r))
    r = login(e2b, p2b, src="127.0.0.15")
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
        ks = (body(r) or {}).get("keys")
        # v3: {"keys":[]} plus the ID-token keys, which are always asymmetric: no secret, no EdDSA access-token key
        # (ID tokens may be RS256 or, per client, EdDSA, so an OKP key may be listed too)
        check("HS256: JWKS lists only the asymmetric ID-token keys (an RSA one; no oct, no private parts)",
              r.status_code == 200 and isinstance(ks, list) and any(k.get("kty") == "RSA" for k in ks)
              and all(k.get("kty") in ("RSA", "OKP") and "d" not in k and "k" not in k for k in ks), _short(r))
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
    # v3: registrations are limited per address by default (10 an hour); 0 disables the limit
    a = Aux("{registrations_per_address_per_hour=0}")
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
        # v3: the default issuer differs per port; instances sharing a database share the configured one
        shared = 'http://127.0.0.1:%d' % (AUX_PORT + Aux.n + 1)
        a = Aux('{reuse_grace=1,issuer="%s"}' % shared, db_url=url)
        b_ = Aux('{reuse_grace=1,issuer="%s"}' % shared, db_url=url)
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


# ================================================================= version 3 helpers
def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mk_client(adm, base=None, **fields):
    """POST /admin/clients with `fields` (name and permissions defaulted)."""
    fields.setdefault("name", "c-" + uuid.uuid4().hex[:6])
    fields.setdefault("permissions", [])
    return call("POST", "/admin/clients", base=base, token=adm, json=fields)


def mk_client_ok(adm, base=None, **fields):
    r = mk_client(adm, base=base, **fields)
    assert r.status_code == 201, _short(r)
    return r.json()


def role_user(adm, perms, base=None):
    """A fresh registered user holding a fresh role with `perms`; returns (email, password, user)."""
    rn = "r3-" + uuid.uuid4().hex[:6]
    r = call("POST", "/admin/roles", base=base, token=adm, json={"name": rn, "description": "v3", "permissions": perms})
    assert r.status_code == 201, _short(r)
    e, p, u = register(base=base)
    r = call("PUT", f"/admin/users/{u['id']}/roles", base=base, token=adm, json={"roles": ["user", rn]})
    assert r.status_code == 200, _short(r)
    return e, p, u, rn


def introspector(base=None, db=None, extra_env=None):
    """A client holding tokens:introspect on the server at `base` (created with the CLI)."""
    key = ("introspector", base or BASE)
    if key not in STATE:
        cid, sec, _ = cli_client(db or MAIN_DB, "v3-introspect", ["tokens:introspect"], extra_env=extra_env)
        STATE[key] = (cid, sec)
    return STATE[key]


def introspect(tok, base=None, creds=None):
    creds = creds or introspector(base)
    r = call("POST", "/oauth/introspect", base=base, data={"token": tok}, auth=creds)
    return body(r) or {}


class HiddenForm(HTMLParser):
    """The forms of an HTML page: [(action, method, {name: value})] with every input's value."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append((a.get("action"), (a.get("method") or "get").lower(), {}))
        elif tag in ("input", "button") and self.forms and a.get("name"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            if tag == "button" and a.get("name") in self.forms[-1][2]:
                return
            self.forms[-1][2].setdefault(a["name"], a.get("value") or "")


def forms_of(html):
    p = HiddenForm()
    p.feed(html)
    return p.forms


class MailSink:
    """An SMTP server (aiosmtpd) on a free loopback port that keeps every message it accepts."""

    def __init__(self):
        from aiosmtpd.controller import Controller
        self.port = free_port()
        self.msgs = []
        self.cond = threading.Condition()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                msg = message_from_bytes(envelope.content, policy=email_policy.default)
                with sink.cond:
                    sink.msgs.append(([x.lower() for x in envelope.rcpt_tos], msg))
                    sink.cond.notify_all()
                return "250 OK queued"

        self.ctl = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.ctl.start()

    def mark(self):
        with self.cond:
            return len(self.msgs)

    def to(self, rcpt, since=0):
        with self.cond:
            return [m for rc, m in self.msgs[since:] if rcpt.lower() in rc]

    def wait(self, rcpt, since=0, timeout=20, pred=None):
        """The first message to `rcpt` accepted after index `since` (matching `pred`), or None."""
        end = time.time() + timeout
        with self.cond:
            while True:
                for rc, m in self.msgs[since:]:
                    if rcpt.lower() in rc and (pred is None or pred(m)):
                        return m
                left = end - time.time()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def stop(self):
        self.ctl.stop()


def mail_text(msg):
    part = msg.get_body(preferencelist=("plain", "html"))
    return part.get_content() if part is not None else ""


def mail_link(msg, page=None):
    """The first `<link_base>/<page>?token=...` link of a message."""
    if msg is None:
        return None
    for link in re.findall(r"https?://[^\s<>\"']+\?token=[A-Za-z0-9_\-~.%]+", mail_text(msg)):
        if page is None or urllib.parse.urlsplit(link).path.endswith("/" + page):
            return link
    return None


def link_token(link):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["token"][0] if link else None


# ---------------------------------------------------------------- a software WebAuthn authenticator
def cbor(x):
    """Minimal CBOR encoder (RFC 8949): ints, bytes, text, lists, maps (canonical enough for COSE)."""
    def head(major, n):
        if n < 24:
            return bytes([major << 5 | n])
        for add, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
            if n < 1 << (8 * size):
                return bytes([major << 5 | add]) + n.to_bytes(size, "big")
        raise ValueError(n)
    if isinstance(x, bool):
        return b"\xf5" if x else b"\xf4"
    if isinstance(x, int):
        return head(0, x) if x >= 0 else head(1, -1 - x)
    if isinstance(x, bytes):
        return head(2, len(x)) + x
    if isinstance(x, str):
        b = x.encode()
        return head(3, len(b)) + b
    if isinstance(x, list):
        return head(4, len(x)) + b"".join(cbor(v) for v in x)
    if isinstance(x, dict):
        return head(5, len(x)) + b"".join(cbor(k) + cbor(v) for k, v in x.items())
    raise TypeError(type(x))


class SoftAuthenticator:
    """A passkey authenticator in software: ES256 (P-256) or EdDSA (Ed25519) keys, attestation
    `none`, WebAuthn Level 3 JSON (`PublicKeyCredential.toJSON()`) out."""

    def __init__(self, origin, alg="ES256", count=True):
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519
        self.origin = origin
        self.alg = alg
        self.count = count
        self.creds = {}  # cred id -> (private key, rp id, user handle)
        self.counter = 0
        self._ec, self._ed = ec, ed25519

    def _cose(self, key):
        from cryptography.hazmat.primitives import serialization
        if self.alg == "ES256":
            n = key.public_key().public_numbers()
            return {1: 2, 3: -7, -1: 1, -2: n.x.to_bytes(32, "big"), -3: n.y.to_bytes(32, "big")}
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {1: 1, 3: -8, -1: 6, -2: raw}

    def _auth_data(self, rp_id, flags, attested=b""):
        if self.count:
            self.counter += 1
        return hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + \
            (self.counter if self.count else 0).to_bytes(4, "big") + attested

    def _client_data(self, typ, challenge, origin=None):
        return json.dumps({"type": typ, "challenge": challenge, "origin": origin or self.origin,
                           "crossOrigin": False}).encode()

    def create(self, options, uv=True, origin=None, cred_id=None):
        """navigator.credentials.create({publicKey: options}).toJSON()"""
        key = self._ec.generate_private_key(self._ec.SECP256R1()) if self.alg == "ES256" \
            else self._ed.Ed25519PrivateKey.generate()
        cred_id = cred_id or os.urandom(32)
        rp_id = options["rp"].get("id") or urllib.parse.urlsplit(self.origin).hostname
        self.creds[cred_id] = (key, rp_id, options["user"]["id"])
        attested = b"\x00" * 16 + len(cred_id).to_bytes(2, "big") + cred_id + cbor(self._cose(key))
        flags = 0x01 | (0x04 if uv else 0) | 0x40
        ad = self._auth_data(rp_id, flags, attested)
        cd = self._client_data("webauthn.create", options["challenge"], origin)
        att = cbor({"fmt": "none", "attStmt": {}, "authData": ad})
        return {"id": b64u(cred_id), "rawId": b64u(cred_id), "type": "public-key",
                "authenticatorAttachment": "platform", "clientExtensionResults": {},
                "response": {"clientDataJSON": b64u(cd), "attestationObject": b64u(att),
                             "transports": ["internal"]}}

    def get(self, options, uv=True, origin=None, cred_id=None, tamper=False):
        """navigator.credentials.get({publicKey: options}).toJSON()"""
        from cryptography.hazmat.primitives import hashes
        allowed = [unb64u(c["id"]) for c in options.get("allowCredentials") or []]
        if cred_id is None:
            mine = [c for c in self.creds if not allowed or c in allowed]
            if not mine:
                return None
            cred_id = mine[-1]
        key, rp_id, handle = self.creds[cred_id]
        ad = self._auth_data(options.get("rpId") or rp_id, 0x01 | (0x04 if uv else 0))
        cd = self._client_data("webauthn.get", options["challenge"], origin)
        msg = ad + hashlib.sha256(cd).digest()
        sig = key.sign(msg, self._ec.ECDSA(hashes.SHA256())) if self.alg == "ES256" else key.sign(msg)
        if tamper:
            sig = sig[:-1] + bytes([sig[-1] ^ 1])
        return {"id": b64u(cred_id), "rawId": b64u(cred_id), "type": "public-key",
                "authenticatorAttachment": "platform", "clientExtensionResults": {},
                "response": {"clientDataJSON": b64u(cd), "authenticatorData": b64u(ad),
                             "signature": b64u(sig), "userHandle": handle}}


# ================================================================= version 3 sections
OIDC_FIELDS = ("issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
               "end_session_endpoint", "response_types_supported", "subject_types_supported",
               "id_token_signing_alg_values_supported", "code_challenge_methods_supported", "scopes_supported",
               "claims_supported", "grant_types_supported", "token_endpoint_auth_methods_supported",
               "authorization_response_iss_parameter_supported")


def check_metadata_doc(label, m, issuer):
    check(f"{label}: issuer equals the configured issuer URL exactly", m.get("issuer") == issuer,
          f"{m.get('issuer')!r} vs {issuer!r}")
    missing = [k for k in OIDC_FIELDS + ("revocation_endpoint", "introspection_endpoint") if k not in m]
    check(f"{label}: every field the contract lists", not missing, f"missing {missing}")
    check(f"{label}: response_types_supported == ['code']", m.get("response_types_supported") == ["code"],
          m.get("response_types_supported"))
    check(f"{label}: subject_types_supported == ['public']", m.get("subject_types_supported") == ["public"],
          m.get("subject_types_supported"))
    check(f"{label}: id_token_signing_alg_values_supported has RS256 and EdDSA",
          {"RS256", "EdDSA"} <= set(m.get("id_token_signing_alg_values_supported") or []),
          m.get("id_token_signing_alg_values_supported"))
    check(f"{label}: code_challenge_methods_supported == ['S256']", m.get("code_challenge_methods_supported") == ["S256"],
          m.get("code_challenge_methods_supported"))
    check(f"{label}: authorization_response_iss_parameter_supported is true",
          m.get("authorization_response_iss_parameter_supported") is True, m.get("authorization_response_iss_parameter_supported"))
    check(f"{label}: token_endpoint_auth_methods_supported has none, client_secret_basic, client_secret_post",
          {"none", "client_secret_basic", "client_secret_post"} <= set(m.get("token_endpoint_auth_methods_supported") or []),
          m.get("token_endpoint_auth_methods_supported"))
    check(f"{label}: grant_types_supported has authorization_code, refresh_token, client_credentials, password",
          {"authorization_code", "refresh_token", "client_credentials", "password"} <= set(m.get("grant_types_supported") or []),
          m.get("grant_types_supported"))
    check(f"{label}: scopes_supported has openid, email, profile, offline_access",
          {"openid", "email", "profile", "offline_access"} <= set(m.get("scopes_supported") or []), m.get("scopes_supported"))
    check(f"{label}: claims_supported has sub, email, email_verified",
          {"sub", "email", "email_verified"} <= set(m.get("claims_supported") or []), m.get("claims_supported"))
    for k in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "end_session_endpoint",
              "revocation_endpoint", "introspection_endpoint"):
        v = m.get(k) or ""
        check(f"{label}: {k} is under the issuer", v.startswith(issuer + "/"), v)
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # authlib's switch for http on loopback
    try:
        AuthorizationServerMetadata(m).validate()
        check(f"{label}: authlib AuthorizationServerMetadata.validate() (AUTHLIB_INSECURE_TRANSPORT for http)", True)
    except Exception as ex:
        check(f"{label}: authlib AuthorizationServerMetadata.validate() (AUTHLIB_INSECURE_TRANSPORT for http)", False, repr(ex))
    try:
        OpenIDProviderMetadata(m).validate()
        check(f"{label}: authlib OpenIDProviderMetadata.validate()", True)
    except Exception as ex:
        check(f"{label}: authlib OpenIDProviderMetadata.validate()", False, repr(ex))


def check_jwks(label, base, want_okp=True):
    r = call("GET", "/.well-known/jwks.json", base=base)
    keys = (body(r) or {}).get("keys", []) if r.status_code == 200 else []
    rsa = [k for k in keys if k.get("kty") == "RSA"]
    okp = [k for k in keys if k.get("kty") == "OKP"]
    bits = [len(unb64u(k.get("n", ""))) * 8 for k in rsa]
    check(f"{label}: JWKS lists an RSA ID-token key of >= 2048 bits with kid", rsa and all(b >= 2048 for b in bits)
          and all(k.get("kid") and k.get("e") for k in rsa), f"bits={bits} {_short(r)[:300]}")
    check(f"{label}: RSA keys are for signatures (use sig / alg RS256 where given)",
          all(k.get("use", "sig") == "sig" and k.get("alg", "RS256") == "RS256" for k in rsa), rsa)
    if want_okp:
        check(f"{label}: JWKS lists OKP Ed25519 keys with kid", okp and all(k.get("crv") == "Ed25519" and k.get("kid") for k in okp), okp)
    check(f"{label}: JWKS holds no private key parts", not any(set(k) & {"d", "p", "q", "dp", "dq", "qi"} for k in keys), keys)
    check(f"{label}: kids are unique", len({k.get("kid") for k in keys}) == len(keys), [k.get("kid") for k in keys])
    try:
        jwt.PyJWKSet.from_dict(body(r))
        check(f"{label}: PyJWKSet parses the JWKS", True)
    except Exception as ex:
        check(f"{label}: PyJWKSet parses the JWKS", False, repr(ex))
    return keys


def sec_discovery():
    issuer = BASE
    check("default issuer is http://<address>:<port> without trailing slash", re.match(r"^http://127\.0\.0\.1:\d+$", metadata().get("issuer", "")) is not None,
          metadata().get("issuer"))
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        r = call("GET", path, headers={"Origin": "https://spa.example.net"})
        m = body(r) or {}
        check(f"GET {path} 200 JSON", r.status_code == 200 and r.headers.get("content-type", "").startswith("application/json"), _short(r))
        check(f"GET {path} allows any origin (CORS)", r.headers.get("access-control-allow-origin") in ("*", "https://spa.example.net"),
              dict(r.headers))
        check_metadata_doc(path, m, issuer)
    a = call("GET", "/.well-known/oauth-authorization-server").json()
    o = call("GET", "/.well-known/openid-configuration").json()
    same = [k for k in OIDC_FIELDS if a.get(k) != o.get(k)]
    check("both metadata documents agree on the shared fields", not same, same)
    r = call("GET", "/.well-known/jwks.json", headers={"Origin": "https://spa.example.net"})
    check("JWKS allows any origin (CORS)", r.headers.get("access-control-allow-origin") in ("*", "https://spa.example.net"), dict(r.headers))
    check_jwks("main (EdDSA)", None)
    # the access token's iss is the URL
    e, p, u = register()
    c = decode_any(login_ok(e, p)["access_token"])
    check("access token iss is the issuer URL", c.get("iss") == issuer, c.get("iss"))
    # the JWKS of an HS256 server still lists the ID-token keys
    a = Aux('{secret="%s"}' % ("k" * 20 + uuid.uuid4().hex))
    try:
        check_jwks("HS256 server", a.base, want_okp=False)
    finally:
        a.stop()


def start_fails(auth_cfg, extra_env=None, timeout=20):
    """Runs `portcullis serve` with `auth_cfg`; returns (exited non-zero quickly, output)."""
    d = tempfile.mkdtemp()
    env = dict(os.environ, ROCKET_PORT=str(free_port()), ROCKET_ADDRESS="127.0.0.1", ROCKET_AUTH=auth_cfg,
               ROCKET_DATABASES='{main={url="%s/x.db"}}' % d)
    env.update(extra_env or {})
    p = subprocess.Popen([BIN, "serve"], cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode != 0, out
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        return False, "still running after %ds: %s" % (timeout, out[-300:])
    finally:
        shutil.rmtree(d, ignore_errors=True)


def sec_issuer():
    for bad in ('"portcullis"', '"http://auth.example.com"', '"http://127.0.0.1:8000/"', '"https://auth.example.com/?x=1"',
                '"https://auth.example.com/#f"', '"ftp://auth.example.com"', '"http://10.1.2.3:8000"'):
        failed, out = start_fails("{issuer=%s}" % bad)
        check(f"issuer={bad} stops start-up naming auth.issuer", failed and "auth.issuer" in out, out[-300:])
    # allowed http loopback forms
    for good in ("http://localhost:%PORT%", "http://127.0.0.2:%PORT%"):
        try:
            a = Aux('{issuer="%s"}' % good)
        except Exception as ex:
            check(f"issuer {good} (loopback http) starts", False, repr(ex)[:300])
            continue
        try:
            want = good.replace("%PORT%", str(a.port))
            m = call("GET", "/.well-known/openid-configuration", base=a.base).json()
            check(f"issuer {good} (loopback http) starts and is the metadata issuer", m.get("issuer") == want, m.get("issuer"))
        finally:
            a.stop()
    # an issuer with a path: RFC 8414 §3 and OIDC Discovery §4 locations
    a = Aux('{issuer="http://127.0.0.1:%PORT%/tenant"}')
    try:
        want = f"{a.base}/tenant"
        r = call("GET", "/.well-known/oauth-authorization-server/tenant", base=a.base)
        check("path issuer: /.well-known/oauth-authorization-server/tenant serves it (RFC 8414 §3)",
              r.status_code == 200 and (body(r) or {}).get("issuer") == want, _short(r)[:200])
        r1 = call("GET", "/tenant/.well-known/openid-configuration", base=a.base)
        r2 = call("GET", "/.well-known/openid-configuration", base=a.base)
        ok1 = r1.status_code == 200 and (body(r1) or {}).get("issuer") == want
        ok2 = r2.status_code == 200 and (body(r2) or {}).get("issuer") == want
        check("path issuer: <path>/.well-known/openid-configuration serves it (directly, or behind a prefix-stripping proxy)",
              ok1 or ok2, f"{_short(r1)[:150]} / {_short(r2)[:150]}")
        if not ok1:
            note("path issuer: GET /tenant/.well-known/openid-configuration on the server itself (docs: a proxy strips the prefix)",
                 _short(r1)[:150])
        m = (body(r2) if ok2 else body(r1)) or {}
        check("path issuer: endpoints are the issuer followed by their path", (m.get("token_endpoint") or "").startswith(want + "/"),
              m.get("token_endpoint"))
        e, p, u = register(base=a.base)
        c = decode_any(login_ok(e, p, base=a.base)["access_token"])
        check("path issuer: tokens carry it as iss", c.get("iss") == want, c.get("iss"))
    finally:
        a.stop()
    # default issuer from an unspecified address
    a = Aux("{}", extra_env={"ROCKET_ADDRESS": "0.0.0.0"})
    try:
        m = call("GET", "/.well-known/oauth-authorization-server", base=a.base).json()
        check("address 0.0.0.0: default issuer is http://127.0.0.1:<port>", m.get("issuer") == f"http://127.0.0.1:{a.port}", m.get("issuer"))
    finally:
        a.stop()


def sec_clients3():
    adm = admin_token()
    tep = metadata()["token_endpoint"]
    # --- types and defaults
    r = mk_client(adm)
    b = body(r) or {}
    check("confidential client by default: type, secret, grant_types ['client_credentials'], first_party false, RS256",
          r.status_code == 201 and b.get("type") == "confidential" and b.get("client_secret")
          and b.get("grant_types") == ["client_credentials"] and b.get("first_party") is False
          and b.get("id_token_signed_response_alg") == "RS256" and b.get("redirect_uris") == [], _short(r))
    r = mk_client(adm, type="public", redirect_uris=["http://127.0.0.1/cb"])
    b = body(r) or {}
    check("public client: 201 without a secret, grant_types authorization_code + refresh_token",
          r.status_code == 201 and b.get("type") == "public" and not b.get("client_secret")
          and sorted(b.get("grant_types") or []) == ["authorization_code", "refresh_token"], _short(r))
    pub = b.get("client_id")
    r = call("GET", "/admin/clients", token=adm)
    lst = {c["client_id"]: c for c in (body(r) or {}).get("clients", [])}
    check("GET /admin/clients shows type, redirect_uris, grant_types, first_party",
          pub in lst and lst[pub].get("type") == "public" and lst[pub].get("redirect_uris") == ["http://127.0.0.1/cb"]
          and "grant_types" in lst[pub] and "first_party" in lst[pub], lst.get(pub))
    # --- redirect URIs (RFC 8252 §7.1, §7.3; RFC 6749 §3.1.2)
    for uri in ("https://app.example.com/cb", "http://127.0.0.1:8080/cb", "http://[::1]:9000/cb", "http://127.0.0.9/cb",
                "com.example.app:/oauth2redirect", "https://app.example.com/cb?x=1"):
        r = mk_client(adm, type="public", redirect_uris=[uri])
        check(f"redirect URI {uri} accepted (201)", r.status_code == 201, _short(r))
    for uri in ("/relative/cb", "app.example.com/cb", "https://app.example.com/cb#frag", "http://app.example.com/cb",
                "http://10.0.0.1/cb", "http://192.168.1.2:8080/cb", "javascript:alert(1)", "data:text/html,hi", "",
                "https://app.example.com/c b", "https://app.example.com/cb\n"):
        r = mk_client(adm, type="public", redirect_uris=[uri])
        check_err(f"redirect URI {uri!r} -> 422 naming redirect_uris", r, 422, "invalid_request",
                  "redirect_uri" in (body(r) or {}).get("error_description", ""))
    r = mk_client(adm, type="public", redirect_uris=["http://localhost:3000/cb"])
    note("redirect URI http://localhost:3000/cb (RFC 8252 §8.3 prefers the loopback IP)", _short(r)[:120])
    r = mk_client(adm, type="public", redirect_uris=["https://app.example.com/cb"], post_logout_redirect_uris=["http://evil.example/out"])
    check_err("post_logout_redirect_uris http non-loopback -> 422", r, 422, "invalid_request")
    # --- grant types
    for typ, grants, ok in (("public", ["client_credentials"], False), ("public", ["password"], False),
                            ("confidential", ["implicit"], False), ("confidential", ["password", "refresh_token"], True),
                            ("confidential", ["authorization_code", "refresh_token", "client_credentials"], True),
                            ("public", ["authorization_code"], True)):
        r = mk_client(adm, type=typ, grant_types=grants, redirect_uris=["https://app.example.com/cb"])
        if ok:
            check(f"{typ} client with grant_types {grants} -> 201", r.status_code == 201, _short(r))
        else:
            check_err(f"{typ} client with grant_types {grants} -> 422 naming grant_types", r, 422, "invalid_request",
                      "grant_type" in (body(r) or {}).get("error_description", ""))
    r = mk_client(adm, id_token_signed_response_alg="HS256")
    check_err("id_token_signed_response_alg HS256 -> 422", r, 422, "invalid_request")
    r = mk_client(adm, type="weird")
    check_err("type 'weird' -> 422", r, 422, "invalid_request")
    # --- PUT
    c = mk_client_ok(adm, type="public", redirect_uris=["https://app.example.com/cb"], name="put-me")
    cid = c["client_id"]
    r = call("PUT", f"/admin/clients/{cid}", token=adm, json={"name": "renamed"})
    b = body(r) or {}
    check("PUT {name} -> 200 and leaves the other fields", r.status_code == 200 and b.get("name") == "renamed"
          and b.get("redirect_uris") == ["https://app.example.com/cb"] and b.get("type") == "public", _short(r))
    r = call("PUT", f"/admin/clients/{cid}", token=adm, json={"redirect_uris": ["https://app.example.com/cb2"]})
    check("PUT {redirect_uris} changes them", r.status_code == 200 and (body(r) or {}).get("redirect_uris") == ["https://app.example.com/cb2"], _short(r))
    r = call("PUT", f"/admin/clients/{cid}", token=adm, json={"type": "confidential"})
    check_err("PUT type change -> 422", r, 422, "invalid_request")
    r = call("PUT", f"/admin/clients/{cid}", token=adm, json={"redirect_uris": ["http://evil.example/cb"]})
    check_err("PUT bad redirect URI -> 422", r, 422, "invalid_request")
    r = call("PUT", f"/admin/clients/{uuid.uuid4()}", token=adm, json={"name": "x"})
    check_err("PUT unknown client -> 404", r, 404, "not_found")
    r = call("GET", "/admin/clients", token=adm)
    got = [x for x in (body(r) or {}).get("clients", []) if x["client_id"] == cid]
    check("a refused PUT changed nothing", got and got[0].get("redirect_uris") == ["https://app.example.com/cb2"]
          and got[0].get("type") == "public", got)
    # --- delegation on clients: first_party needs admin; re-key/PUT/DELETE need the client's permissions
    e, p, u, rn = role_user(adm, ["clients:read", "clients:write", "users:read"])
    ct = login_ok(e, p)["access_token"]
    r = call("POST", "/admin/clients", token=ct, json={"name": "fp", "permissions": [], "first_party": True})
    check_err("clients:write holder (not admin) creating a first_party client -> 403", r, 403, "insufficient_permissions")
    r = call("POST", "/admin/clients", token=ct, json={"name": "tp", "permissions": ["users:read"]})
    check("clients:write holder creating a client within its permissions -> 201", r.status_code == 201, _short(r))
    own = (body(r) or {}).get("client_id")
    r = call("PUT", f"/admin/clients/{own}", token=ct, json={"first_party": True})
    check_err("clients:write holder setting first_party -> 403", r, 403, "insufficient_permissions")
    r = call("PUT", f"/admin/clients/{own}", token=ct, json={"name": "tp2"})
    check("clients:write holder renaming a client within its permissions -> 200", r.status_code == 200, _short(r))
    big = mk_client_ok(adm, permissions=["audit:read", "users:read"])
    r = call("POST", f"/admin/clients/{big['client_id']}/secret", token=ct)
    check_err("re-keying a client holding audit:read without it -> 403", r, 403, "insufficient_permissions")
    r = call("PUT", f"/admin/clients/{big['client_id']}", token=ct, json={"name": "mine now"})
    check_err("PUT of a client holding audit:read without it -> 403", r, 403, "insufficient_permissions")
    r = call("DELETE", f"/admin/clients/{big['client_id']}", token=ct)
    check_err("DELETE of a client holding audit:read without it -> 403", r, 403, "insufficient_permissions")
    r = call("POST", "/oauth/token", data={"grant_type": "client_credentials"}, auth=(big["client_id"], big["client_secret"]))
    check("...and the refused re-key left its secret working", r.status_code == 200, _short(r))
    r = call("PUT", f"/admin/clients/{own}", token=ct, json={"permissions": ["users:read", "audit:read"]})
    check_err("PUT giving a client a permission the actor lacks -> 403", r, 403, "insufficient_permissions")
    r = call("PUT", f"/admin/clients/{pub}", token=adm, json={"first_party": True})
    check("admin sets first_party -> 200", r.status_code == 200 and (body(r) or {}).get("first_party") is True, _short(r))
    # --- grants a client may use
    cc = mk_client_ok(adm, permissions=["users:read"])
    e, p, u = register()
    r = call("POST", "/oauth/token", data={"grant_type": "password", "username": e, "password": p},
             auth=(cc["client_id"], cc["client_secret"]))
    check_err("password grant by a client without it -> 400 unauthorized_client", r, 400, "unauthorized_client")
    try:
        OAuth2Session(client_id=cc["client_id"], client_secret=cc["client_secret"]).fetch_token(
            tep, grant_type="password", username=e, password=p)
        check("authlib: password grant by a client without it raises unauthorized_client", False, "no error")
    except AuthlibBaseError as ex:
        check("authlib: password grant by a client without it raises unauthorized_client", ex.error == "unauthorized_client", repr(ex))
    r = call("POST", "/oauth/token", data={"grant_type": "client_credentials", "client_id": pub})
    check("client_credentials by a public client -> 400 unauthorized_client (or 401 invalid_client)",
          is_err(r, 400, "unauthorized_client") or is_err(r, 401, "invalid_client"), _short(r))
    r = call("POST", "/oauth/token", data={"grant_type": "password", "username": e, "password": p, "client_id": pub})
    check("password grant by a public client -> 400 unauthorized_client (or 401 invalid_client)",
          is_err(r, 400, "unauthorized_client") or is_err(r, 401, "invalid_client"), _short(r))
    # --- client_id claim (RFC 9068 §2.2)
    b = login_ok(e, p)
    c = decode(b["access_token"])
    check("/auth/login token: client_id 'portcullis'", c.get("client_id") == "portcullis", c)
    t = call("POST", "/oauth/token", data={"grant_type": "password", "username": e, "password": p}).json()
    check("password grant without client: client_id 'portcullis'", decode(t["access_token"]).get("client_id") == "portcullis", t)
    check("aud is a single string", isinstance(c.get("aud"), str), c.get("aud"))
    pc = mk_client_ok(adm, grant_types=["password", "refresh_token"], first_party=True)
    P = (pc["client_id"], pc["client_secret"])
    qc = mk_client_ok(adm, grant_types=["password", "refresh_token"], first_party=True)
    Q = (qc["client_id"], qc["client_secret"])
    s = OAuth2Session(client_id=P[0], client_secret=P[1])
    try:
        tp = s.fetch_token(tep, grant_type="password", username=e, password=p)
        c = decode(tp["access_token"])
        check("authlib password grant by a client with it: token client_id is the client", c.get("client_id") == P[0], c)
    except Exception as ex:
        check("authlib password grant by a client with it", False, repr(ex))
        tp = None
    ins = introspect(b["access_token"])
    check("introspection: client_id 'portcullis', token_type Bearer, token_use access_token",
          ins.get("client_id") == "portcullis" and ins.get("token_type") == "Bearer" and ins.get("token_use") == "access_token", ins)
    ins = introspect(b["refresh_token"])
    check("introspection of a refresh token: token_use refresh_token, client_id", ins.get("active") is True
          and ins.get("token_use") == "refresh_token" and ins.get("client_id") == "portcullis", ins)
    # --- refresh tokens bound to their client (RFC 6749 §6, §10.4)
    if tp:
        rt = tp["refresh_token"]
        r = call("POST", "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": rt})
        check_err("client session's refresh at /oauth/token without the client's authentication -> 400 invalid_grant", r, 400, "invalid_grant")
        r = call("POST", "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": rt}, auth=Q)
        check_err("client session's refresh by another client -> 400 invalid_grant", r, 400, "invalid_grant")
        r = call("POST", "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": rt, "client_id": P[0]})
        check("client session's refresh with client_id but no secret -> 401 invalid_client or 400 invalid_grant",
              is_err(r, 401, "invalid_client") or is_err(r, 400, "invalid_grant"), _short(r))
        r = call("POST", "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": rt}, auth=(P[0], "wrong"))
        check_err("client session's refresh with a wrong secret -> 401 invalid_client", r, 401, "invalid_client")
        r = call("POST", "/auth/refresh", json={"refresh_token": rt})
        check_err("confidential client's session at /auth/refresh -> 401 invalid_grant", r, 401, "invalid_grant")
        try:
            t2 = s.refresh_token(tep, refresh_token=rt)
            check("...the refusals changed nothing: the client refreshes (authlib)", t2.get("access_token")
                  and decode(t2["access_token"]).get("client_id") == P[0], t2)
        except Exception as ex:
            check("...the refusals changed nothing: the client refreshes (authlib)", False, repr(ex))
            t2 = {}
        # revocation: a confidential client's token is revoked only by that client
        r = call("POST", "/oauth/revoke", data={"token": t2.get("refresh_token", "")})
        check("revoke of a confidential client's token without its authentication -> 200", r.status_code == 200, _short(r))
        r = call("POST", "/oauth/revoke", data={"token": t2.get("refresh_token", "")}, auth=Q)
        check("revoke of a confidential client's token by another client -> 200", r.status_code == 200, _short(r))
        r = call("GET", "/users/me", token=t2.get("access_token"))
        check("...and nothing happened (session lives)", r.status_code == 200, _short(r))
        r = call("POST", "/oauth/revoke", data={"token": t2.get("refresh_token", "")}, auth=(P[0], "wrong"))
        check_err("revoke with a registered client's wrong secret -> 401 invalid_client", r, 401, "invalid_client")
        r = call("POST", "/oauth/revoke", data={"token": t2.get("access_token", "")}, auth=P)
        check("revoke by the owning client -> 200", r.status_code == 200, _short(r))
        r = call("GET", "/users/me", token=t2.get("access_token"))
        check_err("...and the session ended", r, 401, "invalid_token")
    r = call("POST", "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": b["refresh_token"]}, auth=P)
    check_err("portcullis session's refresh by a registered client -> 400 invalid_grant", r, 400, "invalid_grant")
    r = call("POST", "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": b["refresh_token"]})
    check("portcullis session's refresh at /oauth/token without client -> 200", r.status_code == 200, _short(r))
    # a client without the refresh_token grant gets no refresh token
    nr = mk_client_ok(adm, grant_types=["password"], first_party=True)
    r = call("POST", "/oauth/token", data={"grant_type": "password", "username": e, "password": p},
             auth=(nr["client_id"], nr["client_secret"]))
    check("client without the refresh_token grant: 200 without refresh_token", r.status_code == 200
          and "refresh_token" not in (body(r) or {}), _short(r))
    # deleting a client ends its users' sessions
    dc = mk_client_ok(adm, grant_types=["password", "refresh_token"], first_party=True)
    td = call("POST", "/oauth/token", data={"grant_type": "password", "username": e, "password": p},
              auth=(dc["client_id"], dc["client_secret"])).json()
    call("DELETE", f"/admin/clients/{dc['client_id']}", token=adm)
    r = call("GET", "/users/me", token=td.get("access_token"))
    check_err("deleting a client ends its users' sessions (access token)", r, 401, "invalid_token")
    # --- who may use which endpoint: a third-party client's session
    tc = mk_client_ok(adm, grant_types=["password", "refresh_token"])
    T = (tc["client_id"], tc["client_secret"])
    r = call("POST", "/oauth/token", data={"grant_type": "password", "username": e, "password": p}, auth=T)
    if r.status_code != 200:
        note("password grant by a third-party client refused; the endpoint rules are not checked", _short(r)[:200])
    else:
        tt = r.json()
        tok = tt["access_token"]
        r = call("GET", "/users/me", token=tok)
        check("third-party session: GET /users/me 200", r.status_code == 200, _short(r))
        # each on a fresh third-party session: an endpoint that wrongly answers may end sessions
        for meth, path, js in (("GET", "/auth/sessions", None),
                               ("PUT", "/users/me/password", {"current_password": p, "new_password": p}),
                               ("POST", "/auth/mfa/totp", {"password": p}), ("GET", "/users/me/consents", None),
                               ("GET", "/auth/passkeys", None), ("POST", "/auth/passkeys/register", {"password": p}),
                               ("POST", "/users/me/email", {"password": p, "new_email": email()}),
                               ("POST", "/auth/email/verify/send", None), ("POST", "/auth/logout-all", None)):
            tok = call("POST", "/oauth/token", data={"grant_type": "password", "username": e, "password": p}, auth=T).json()["access_token"]
            r = call(meth, path, token=tok, json=js)
            if r.status_code == 503 and ("mail" in path or "passkey" in path or "email" in path):
                note(f"third-party session: {meth} {path} -> 503 here (mail/passkeys off on this server; 403 before 503 assumed)", _short(r)[:120])
                continue
            check_err(f"third-party session: {meth} {path} -> 403 insufficient_permissions", r, 403, "insufficient_permissions")
            check(f"third-party session: {meth} {path} 403 carries Bearer error=\"insufficient_scope\"",
                  'error="insufficient_scope"' in r.headers.get("www-authenticate", ""), r.headers.get("www-authenticate"))
        tt = call("POST", "/oauth/token", data={"grant_type": "password", "username": e, "password": p}, auth=T).json()
        tok = tt["access_token"]
        r = call("DELETE", f"/auth/sessions/{tt['session_id']}", token=tok)
        check("third-party session: DELETE /auth/sessions/<its own id> -> 204", r.status_code == 204, _short(r))
        other = login_ok(e, p)
        tt = call("POST", "/oauth/token", data={"grant_type": "password", "username": e, "password": p}, auth=T).json()
        r = call("DELETE", f"/auth/sessions/{other['session_id']}", token=tt["access_token"])
        check("third-party session: DELETE /auth/sessions/<another session> -> 403/404", r.status_code in (403, 404), _short(r))
        r = call("POST", "/auth/logout", token=tt["access_token"])
        check("third-party session: POST /auth/logout -> 204", r.status_code == 204, _short(r))
    # --- introspection needs tokens:introspect
    nc, ns, _ = cli_client(MAIN_DB, "no-introspect", ["users:read"])
    r = call("POST", "/oauth/introspect", data={"token": b["access_token"]}, auth=(nc, ns))
    check_err("introspection by a client without tokens:introspect -> 403", r, 403, "insufficient_permissions")
    # --- failed client authentication: strangers cannot lock a client out
    for _ in range(30):
        call("POST", "/oauth/token", data={"grant_type": "client_credentials"}, auth=(cc["client_id"], "guess"), src="127.0.0.50")
    r = call("POST", "/oauth/token", data={"grant_type": "client_credentials"}, auth=(cc["client_id"], "guess"), src="127.0.0.50")
    note("31st failed client authentication from one address", _short(r)[:160])
    r = call("POST", "/oauth/token", data={"grant_type": "client_credentials"}, auth=(cc["client_id"], cc["client_secret"]), src="127.0.0.51")
    check("30 failed authentications of a client from a stranger's address do not lock it out elsewhere", r.status_code == 200, _short(r))
    for _ in range(8):
        login(cc["client_id"], "nope-nope-nope", src="127.0.0.52")
    r = call("POST", "/oauth/token", data={"grant_type": "client_credentials"}, auth=(cc["client_id"], cc["client_secret"]), src="127.0.0.52")
    check("failed user logins never count against a client", r.status_code == 200, _short(r))
    # --- the command line
    out = cli(["client", "create", "--name", "cli-pub", "--type", "public", "--redirect-uri", "http://127.0.0.1:7000/cb",
               "--grant-type", "authorization_code", "--grant-type", "refresh_token", "--first-party"], MAIN_DB)
    m = re.search(r"client_id\W+([A-Za-z0-9_\-\.]+)", out.stdout)
    check("portcullis client create --type public --redirect-uri --grant-type --first-party exits 0, prints client_id",
          out.returncode == 0 and m, out.stderr + out.stdout)
    if m:
        lst = {x["client_id"]: x for x in call("GET", "/admin/clients?limit=200", token=adm).json().get("clients", [])}
        x = lst.get(m.group(1), {})
        check("...and the client has those settings", x.get("type") == "public" and x.get("first_party") is True
              and x.get("redirect_uris") == ["http://127.0.0.1:7000/cb"], x)
    out = cli(["client", "create", "--name", "cli-bad", "--type", "public", "--grant-type", "client_credentials"], MAIN_DB)
    check("portcullis client create --type public --grant-type client_credentials is refused", out.returncode != 0, out.stdout)


def sec_scope():
    adm = admin_token()
    tep = metadata()["token_endpoint"]
    e, p, u, rn = role_user(adm, ["users:read", "audit:read"])
    # down-scoped sessions
    r = login(e, p, json_extra={"scope": "users:read"})
    b = body(r) or {}
    check("login with scope users:read -> 200 and scope in the response", r.status_code == 200 and b.get("scope") == "users:read", _short(r))
    if r.status_code == 200:
        c = decode(b["access_token"])
        check("down-scoped token carries scope", c.get("scope") == "users:read", c)
        r = call("GET", "/admin/users?limit=1", token=b["access_token"])
        check("down-scoped token: permission in scope -> 200", r.status_code == 200, _short(r))
        r = call("GET", "/admin/audit?limit=1", token=b["access_token"])
        check_err("down-scoped token: permission held but outside scope -> 403", r, 403, "insufficient_permissions")
        check("...with WWW-Authenticate Bearer error=\"insufficient_scope\" (RFC 6750 §3.1)",
              'error="insufficient_scope"' in r.headers.get("www-authenticate", ""), r.headers.get("www-authenticate"))
        ins = introspect(b["access_token"])
        check("introspection of a down-scoped token has scope", ins.get("scope") == "users:read", ins)
        r = call("POST", "/auth/refresh", json={"refresh_token": b["refresh_token"], "scope": "users:read audit:read"})
        check_err("refresh widening the scope -> 400 invalid_scope", r, 400, "invalid_scope")
        r = call("POST", "/auth/refresh", json={"refresh_token": b["refresh_token"]})
        check("...the refused widening spent nothing (refresh 200, scope kept)", r.status_code == 200 and (body(r) or {}).get("scope") == "users:read", _short(r))
    r = login(e, p, json_extra={"scope": "roles:read"})
    check_err("login with a permission the user lacks -> 400 invalid_scope", r, 400, "invalid_scope")
    r = login(e, p, json_extra={"scope": "nosuch:perm"})
    check_err("login with a resource:action that is no permission -> 400 invalid_scope", r, 400, "invalid_scope")
    r = login(e, "wrong" + p, json_extra={"scope": "roles:read"}, src="127.0.0.53")
    check_err("wrong password with an invalid scope -> 401 invalid_credentials (credentials first)", r, 401, "invalid_credentials")
    r = login(e, p, json_extra={"scope": "openid email profile offline_access users:read"})
    check("OpenID values beside permissions are accepted", r.status_code == 200, _short(r))
    if r.status_code == 200:
        c = decode(r.json()["access_token"])
        note("scope claim with OpenID values", c.get("scope"))
    r = login(e, p, json_extra={"scope": "address phone users:read"})
    check("unknown OpenID values (address, phone) are ignored", r.status_code == 200, _short(r))
    # narrowing, then back within the first grant
    b = login_ok_scope(e, p, "users:read audit:read")
    n = call("POST", "/auth/refresh", json={"refresh_token": b["refresh_token"], "scope": "users:read"})
    check("refresh narrowing the scope -> 200 with the narrower scope", n.status_code == 200 and (body(n) or {}).get("scope") == "users:read", _short(n))
    if n.status_code == 200:
        r = call("GET", "/admin/audit?limit=1", token=n.json()["access_token"])
        check_err("narrowed token lacks the dropped permission", r, 403, "insufficient_permissions")
        n2 = call("POST", "/auth/refresh", json={"refresh_token": n.json()["refresh_token"], "scope": "users:read audit:read"})
        check("refresh back to the first granted scope -> 200 ('never widen' against the first grant)", n2.status_code == 200, _short(n2))
        n3 = call("POST", "/auth/refresh", json={"refresh_token": (body(n2) or n.json())["refresh_token"], "scope": "roles:read users:read"})
        check_err("refresh asking beyond the first grant -> 400 invalid_scope", n3, 400, "invalid_scope")
    # the user loses a permission: the scope keeps naming it, refresh does not fail
    b = login_ok_scope(e, p, "users:read audit:read")
    call("PUT", f"/admin/roles/{rn}", token=adm, json={"description": "v3", "permissions": ["users:read"]})
    r = call("POST", "/auth/refresh", json={"refresh_token": b["refresh_token"]})
    check("after losing a scoped permission the refresh still succeeds", r.status_code == 200, _short(r))
    if r.status_code == 200:
        t = r.json()["access_token"]
        r2 = call("GET", "/admin/audit?limit=1", token=t)
        check_err("...and the token no longer grants it", r2, 403, "insufficient_permissions")
    # OAuth grants
    s = OAuth2Session(token_endpoint=tep)
    try:
        t = s.fetch_token(tep, grant_type="password", username=e, password=p, scope="users:read")
        check("authlib password grant with scope -> scope in the response", t.get("scope") == "users:read", t)
        try:
            s.refresh_token(tep, refresh_token=t["refresh_token"], scope="users:read audit:read")
            check("authlib refresh widening -> invalid_scope", False, "no error")
        except AuthlibBaseError as ex:
            check("authlib refresh widening -> OAuthError invalid_scope", ex.error == "invalid_scope", repr(ex))
    except Exception as ex:
        check("authlib password grant with scope", False, repr(ex))
    r = call("POST", "/oauth/token", data={"grant_type": "password", "username": e, "password": p, "scope": "roles:write"})
    check_err("password grant with a permission the user lacks -> 400 invalid_scope", r, 400, "invalid_scope")
    # verifiers grant scope ∩ roles: forged checks are in the resource-server crate; here the token answer
    e2, p2, u2 = register()
    r = login(e2, p2, json_extra={"scope": "users:read"})
    check_err("plain user asking for users:read -> 400 invalid_scope", r, 400, "invalid_scope")


def login_ok_scope(e, p, scope, base=None):
    r = call("POST", "/auth/login", base=base, json={"email": e, "password": p, "scope": scope})
    assert r.status_code == 200, _short(r)
    return r.json()


def sec_audience():
    api, oth = "https://api.example.com", "https://reports.example.com/v1"
    a = Aux('{resources=["%s","%s"]}' % (api, oth))
    try:
        meta = call("GET", "/.well-known/oauth-authorization-server", base=a.base).json()
        jc = jwt.PyJWKClient(meta["jwks_uri"])
        e, p, u = register(base=a.base)

        def dec(tok, aud):
            k = jc.get_signing_key_from_jwt(tok)
            return jwt.decode(tok, k.key, algorithms=["EdDSA"], audience=aud, issuer=meta["issuer"])
        r = login(e, p, base=a.base, json_extra={"resource": api})
        b = body(r) or {}
        check("login with a listed resource -> 200", r.status_code == 200, _short(r))
        if r.status_code == 200:
            c = dec(b["access_token"], api)
            check("its aud is exactly the resource (a string)", c.get("aud") == api, c.get("aud"))
            r = call("GET", "/users/me", base=a.base, token=b["access_token"])
            check_err("Portcullis's own endpoints refuse it -> 401 invalid_token", r, 401, "invalid_token")
            n = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": b["refresh_token"]})
            check("refresh omitting resource keeps the audience", n.status_code == 200 and dec(n.json()["access_token"], api)["aud"] == api, _short(n))
            n = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": n.json()["refresh_token"], "resource": api})
            check("refresh repeating the resource -> 200", n.status_code == 200, _short(n))
            r = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": n.json()["refresh_token"], "resource": oth})
            check_err("refresh naming another resource -> 400 invalid_target", r, 400, "invalid_target")
            ins = introspect(b["access_token"], base=a.base, creds=cli_client(a.db, "i", ["tokens:introspect"], extra_env=a.auth_env())[:2])
            check("introspection shows the resource as aud", ins.get("aud") in (api, [api]), ins)
        r = login(e, p, base=a.base, json_extra={"resource": "https://evil.example.com"})
        check_err("login with an unlisted resource -> 400 invalid_target", r, 400, "invalid_target")
        r = login(e, "wrong" + p, base=a.base, json_extra={"resource": "https://evil.example.com"}, src="127.0.0.54")
        check_err("unlisted resource with a wrong password -> 400 invalid_target (checked before credentials)", r, 400, "invalid_target")
        r = login(e, p, base=a.base, json_extra={"resource": "portcullis"})
        check_err("resource = the own audience (not listed) -> 400 invalid_target", r, 400, "invalid_target")
        # session started without one
        b = login_ok(e, p, base=a.base)
        check("without resource aud is auth.audience", dec(b["access_token"], "portcullis")["aud"] == "portcullis", "")
        n = call("POST", "/auth/refresh", base=a.base, json={"refresh_token": b["refresh_token"], "resource": oth})
        check("session without resource: a refresh naming one -> that audience", n.status_code == 200
              and dec(n.json()["access_token"], oth)["aud"] == oth, _short(n))
        # OAuth token endpoint
        r = call("POST", "/oauth/token", base=a.base, data={"grant_type": "password", "username": e, "password": p, "resource": api})
        check("password grant with resource -> aud is the resource", r.status_code == 200 and dec(r.json()["access_token"], api)["aud"] == api, _short(r))
        r = call("POST", "/oauth/token", base=a.base, data={"grant_type": "password", "username": e, "password": p, "resource": "https://x.example"})
        check_err("password grant with an unlisted resource -> 400 invalid_target", r, 400, "invalid_target")
        cid, sec, _ = cli_client(a.db, "rs", ["users:read"], extra_env=a.auth_env())
        r = call("POST", "/oauth/token", base=a.base, data={"grant_type": "client_credentials", "resource": api}, auth=(cid, sec))
        check("client_credentials with resource -> aud is the resource", r.status_code == 200
              and dec(r.json()["access_token"], api)["aud"] == api, _short(r))
        if r.status_code == 200:
            r = call("GET", "/admin/users", base=a.base, token=r.json()["access_token"])
            check_err("...and /admin refuses that client token -> 401 invalid_token", r, 401, "invalid_token")
        r = call("POST", "/oauth/token", base=a.base, data={"grant_type": "client_credentials", "resource": "https://x.example"}, auth=(cid, sec))
        check_err("client_credentials with an unlisted resource -> 400 invalid_target", r, 400, "invalid_target")
    finally:
        a.stop()


def mail_env(sink, **extra):
    kv = ['smtp_url="smtp://127.0.0.1:%d"' % sink.port]
    for k, v in extra.items():
        kv.append("%s=%s" % (k, json.dumps(v) if isinstance(v, str) else v))
    return {"ROCKET_MAIL": "{" + ",".join(kv) + "}"}


def sec_mail():
    # without mail: 503 unavailable, after the bearer check
    r = call("POST", "/auth/password/forgot", json={"email": email()})
    check_err("mail not configured: forgot -> 503 unavailable", r, 503, "unavailable")
    r = call("POST", "/auth/email/verify/send")
    check_err("mail not configured: verify/send without a token -> 401 (bearer check first)", r, 401, "invalid_token")
    failed, out = start_fails("{require_verified_email=true}")
    check("require_verified_email without mail stops start-up", failed and "mail" in out.lower(), out[-300:])

    sink = MailSink()
    a = None
    try:
        a = Aux("{registrations_per_address_per_hour=0}", extra_env=mail_env(sink))
        issuer = call("GET", "/.well-known/oauth-authorization-server", base=a.base).json()["issuer"]
        # registration mails a verification link
        mk = sink.mark()
        e, p, u = register(base=a.base)
        check("user object has email_verified false after registration", u.get("email_verified") is False, u)
        msg = sink.wait(e, mk)
        link = mail_link(msg, "verify-email")
        check("registration mails a verification link <link_base>/verify-email?token=...",
              link is not None and link.startswith(issuer + "/verify-email?token="), mail_text(msg)[:300] if msg else "no mail")
        if msg is not None:
            frm = msg.get("From", "")
            note("From of the mails (contract: mail.from defaults to no-reply@<issuer host>)", frm)
            check("mails carry a Message-ID", bool(msg.get("Message-ID")), dict(msg.items()))
        tokv = link_token(link)
        b = login_ok(e, p, base=a.base)
        mk = sink.mark()
        r = call("POST", "/auth/email/verify/send", base=a.base, token=b["access_token"])
        check("POST /auth/email/verify/send -> 202", r.status_code == 202, _short(r))
        sent = link_token(mail_link(sink.wait(e, mk, pred=lambda m: mail_link(m, "verify-email")), "verify-email"))
        check("verify/send mails a new link", sent is not None and sent != tokv, "no mail")
        if sent and tokv:
            r = call("POST", "/auth/email/verify", base=a.base, json={"token": tokv})
            check_err("a new verification request voids the previous token -> 400 invalid_grant", r, 400, "invalid_grant")
            link, tokv = link.replace(tokv, sent), sent
        if tokv:
            check("mail token carries >= 256 bits (>= 43 URL-safe chars)", re.match(r"^[A-Za-z0-9_\-]{43,}$", tokv) is not None, tokv)
            # the page behind the link shows a form and spends nothing on GET
            r = requests.get(link, timeout=10)
            check("GET the verification link page: 200 HTML with a form", r.status_code == 200 and "<form" in r.text.lower(), _short(r)[:200])
            check("link page sends Referrer-Policy: no-referrer", r.headers.get("referrer-policy", "").lower() == "no-referrer", dict(r.headers))
            check("link page sends frame-ancestors 'none', nosniff, no-store",
                  "frame-ancestors 'none'" in r.headers.get("content-security-policy", "")
                  and r.headers.get("x-content-type-options") == "nosniff" and "no-store" in r.headers.get("cache-control", ""), dict(r.headers))
            r = call("POST", "/auth/email/verify", base=a.base, json={"token": tokv})
            check("POST /auth/email/verify after the page GET -> 204 (GET spent nothing)", r.status_code == 204, _short(r))
            r = call("POST", "/auth/email/verify", base=a.base, json={"token": tokv})
            check_err("verification token used twice -> 400 invalid_grant", r, 400, "invalid_grant")
            b = login_ok(e, p, base=a.base)
            r = call("GET", "/users/me", base=a.base, token=b["access_token"])
            check("email_verified true after verification", (body(r) or {}).get("email_verified") is True, _short(r))
        for path in ("/auth/email/verify", "/auth/email/confirm"):
            r = call("POST", path, base=a.base, json={"token": "A" * 43})
            check_err(f"unknown token at {path} -> 400 invalid_grant", r, 400, "invalid_grant")

        # forgot -> mail -> reset
        e, p, u = register(base=a.base)
        s1 = login_ok(e, p, base=a.base)
        mk = sink.mark()
        r = call("POST", "/auth/password/forgot", base=a.base, json={"email": e.upper()})
        check("forgot -> 202 {}", r.status_code == 202 and body(r) == {}, _short(r))
        r2 = call("POST", "/auth/password/forgot", base=a.base, json={"email": email("ghost")})
        check("forgot of an unknown address -> the same 202 {}", r2.status_code == 202 and body(r2) == {}, _short(r2))
        msg = sink.wait(e, mk, pred=lambda m: mail_link(m, "reset-password") is not None)
        link = mail_link(msg, "reset-password")
        check("reset mail with <link_base>/reset-password?token=...", link is not None and link.startswith(issuer + "/reset-password?token="),
              mail_text(msg)[:300] if msg else "no mail")
        rt = link_token(link)
        if rt:
            r = requests.get(link, timeout=10)
            check("GET the reset page: 200 form, Referrer-Policy no-referrer", r.status_code == 200 and "<form" in r.text.lower()
                  and r.headers.get("referrer-policy", "").lower() == "no-referrer", _short(r)[:200])
            r = call("POST", "/auth/password/reset", base=a.base, json={"token": "B" * 43, "new_password": "short"})
            check_err("reset order: unknown token with a bad password -> 400 invalid_grant first", r, 400, "invalid_grant")
            r = call("POST", "/auth/password/reset", base=a.base, json={"token": rt, "new_password": "short"})
            check_err("reset with a too-short password -> 422", r, 422, "invalid_request")
            r = call("POST", "/auth/password/reset", base=a.base, json={"token": rt, "new_password": "password1"})
            check_err("reset with a common password -> 422", r, 422, "invalid_request")
            newp = pw()
            mk = sink.mark()
            r = call("POST", "/auth/password/reset", base=a.base, json={"token": rt, "new_password": newp})
            check("reset -> 204 (the refused attempts did not spend the token)", r.status_code == 204, _short(r))
            r = call("GET", "/users/me", base=a.base, token=s1["access_token"])
            check_err("reset ends every session", r, 401, "invalid_token")
            check_err("old password refused after reset", login(e, p, base=a.base, src="127.0.0.60"), 401, "invalid_credentials")
            check("new password works after reset", login(e, newp, base=a.base).status_code == 200, "")
            r = call("POST", "/auth/password/reset", base=a.base, json={"token": rt, "new_password": pw()})
            check_err("reset token used twice -> 400 invalid_grant", r, 400, "invalid_grant")
            check("a 'your password was changed' notice is mailed", sink.wait(e, mk) is not None, "no notice")
            p = newp
        # a new forgot voids the previous token; a rate-limited forgot does not
        e2, p2, u2 = register(base=a.base)  # verification mail: 1 of 3 to this address
        mk = sink.mark()
        call("POST", "/auth/password/forgot", base=a.base, json={"email": e2})  # 2 of 3
        t_a = link_token(mail_link(sink.wait(e2, mk, pred=lambda m: mail_link(m, "reset-password")), "reset-password"))
        mk = sink.mark()
        call("POST", "/auth/password/forgot", base=a.base, json={"email": e2})  # 3 of 3
        t_b = link_token(mail_link(sink.wait(e2, mk, pred=lambda m: mail_link(m, "reset-password")), "reset-password"))
        mk = sink.mark()
        r = call("POST", "/auth/password/forgot", base=a.base, json={"email": e2})  # limited
        check("a 4th token mail to one address in an hour: still 202 {}", r.status_code == 202 and body(r) == {}, _short(r))
        time.sleep(3)
        check("...and no mail is sent", not sink.to(e2, mk), [mail_text(m)[:80] for m in sink.to(e2, mk)])
        if t_a and t_b:
            r = call("POST", "/auth/password/reset", base=a.base, json={"token": t_a, "new_password": pw()})
            check_err("a new forgot voids the previous token -> 400 invalid_grant", r, 400, "invalid_grant")
            r = call("POST", "/auth/password/reset", base=a.base, json={"token": t_b, "new_password": pw()})
            check("a rate-limited forgot did not void the earlier token (204)", r.status_code == 204, _short(r))
        else:
            check("two reset mails to one address", False, f"{t_a} {t_b}")
        # reset clears the password-failure counters
        e3, p3, u3 = register(base=a.base)
        for _ in range(5):
            login(e3, "bad" + p3, base=a.base, src="127.0.0.61")
        check("5 failures lock the account from that address (429)", login(e3, p3, base=a.base, src="127.0.0.61").status_code == 429, "")
        mk = sink.mark()
        call("POST", "/auth/password/forgot", base=a.base, json={"email": e3})
        t3 = link_token(mail_link(sink.wait(e3, mk, pred=lambda m: mail_link(m, "reset-password")), "reset-password"))
        np3 = pw()
        r = call("POST", "/auth/password/reset", base=a.base, json={"token": t3, "new_password": np3})
        check("reset of a throttled account -> 204", r.status_code == 204, _short(r))
        r = login(e3, np3, base=a.base, src="127.0.0.61")
        check("a successful reset clears the account's password-failure counters", r.status_code == 200, _short(r))
        # reset with MFA
        e4, p4, u4 = register(base=a.base)
        t4 = login_ok(e4, p4, base=a.base)["access_token"]
        sec = call("POST", "/auth/mfa/totp", base=a.base, token=t4, json={"password": p4}).json()["secret"]
        totp = pyotp.TOTP(sec)
        conf = call("POST", "/auth/mfa/totp/confirm", base=a.base, token=t4, json={"code": totp.now()})
        rcodes = (body(conf) or {}).get("recovery_codes", [])
        mk = sink.mark()
        call("POST", "/auth/password/forgot", base=a.base, json={"email": e4})
        t4r = link_token(mail_link(sink.wait(e4, mk, pred=lambda m: mail_link(m, "reset-password")), "reset-password"))
        r = call("POST", "/auth/password/reset", base=a.base, json={"token": t4r, "new_password": "short"})
        check_err("MFA reset order: bad password (422) before the missing code", r, 422, "invalid_request")
        r = call("POST", "/auth/password/reset", base=a.base, json={"token": t4r, "new_password": pw()})
        b = body(r) or {}
        check_err("MFA account: reset without code -> 403 mfa_required", r, 403, "mfa_required")
        note("mfa_required at reset: mfa_methods", b.get("mfa_methods"))
        r = call("POST", "/auth/password/reset", base=a.base, json={"token": t4r, "new_password": pw(), "code": "000000"})
        check_err("MFA account: reset with a wrong code -> 401 invalid_credentials", r, 401, "invalid_credentials")
        r = call("POST", "/auth/password/reset", base=a.base, json={"token": t4r, "new_password": pw(), "code": rcodes[0] if rcodes else totp.at(time.time() + 30)})
        check("MFA account: reset with a recovery code -> 204", r.status_code == 204, _short(r))
        # email change
        e5, p5, u5 = register(base=a.base)
        b5 = login_ok(e5, p5, base=a.base)
        mk = sink.mark()
        call("POST", "/auth/password/forgot", base=a.base, json={"email": e5})
        t5r = link_token(mail_link(sink.wait(e5, mk, pred=lambda m: mail_link(m, "reset-password")), "reset-password"))
        new = email("moved")
        r = call("POST", "/users/me/email", base=a.base, token=b5["access_token"], json={"password": "wrong" + p5, "new_email": new}, src="127.0.0.62")
        check_err("email change with a wrong password -> 401 invalid_credentials", r, 401, "invalid_credentials")
        check("...with a bare Bearer challenge (the client keeps its token)", r.headers.get("www-authenticate", "").strip() == "Bearer",
              r.headers.get("www-authenticate"))
        r = call("POST", "/users/me/email", base=a.base, token=b5["access_token"], json={"password": p5, "new_email": e.upper()})
        check_err("email change to a taken address -> 409", r, 409, "conflict")
        mk = sink.mark()
        r = call("POST", "/users/me/email", base=a.base, token=b5["access_token"], json={"password": p5, "new_email": new})
        check("email change -> 202", r.status_code == 202, _short(r))
        cm = sink.wait(new, mk)
        clink = mail_link(cm, "confirm-email")
        check("confirmation mail to the new address with <link_base>/confirm-email?token=...",
              clink is not None and clink.startswith(issuer + "/confirm-email?token="), mail_text(cm)[:200] if cm else "no mail")
        check("a notice to the old address", sink.wait(e5, mk) is not None, "no notice")
        r = call("GET", "/users/me", base=a.base, token=b5["access_token"])
        check("the address changes only when confirmed", (body(r) or {}).get("email") == e5, _short(r))
        if clink:
            r = requests.get(clink, timeout=10)
            check("confirm-email page: Referrer-Policy no-referrer", r.headers.get("referrer-policy", "").lower() == "no-referrer", dict(r.headers))
            r = call("POST", "/auth/email/confirm", base=a.base, json={"token": link_token(clink)})
            b = body(r) or {}
            check("confirm -> 200 user object with the new address, email_verified true",
                  r.status_code == 200 and b.get("email") == new and b.get("email_verified") is True, _short(r))
            r = call("POST", "/auth/email/confirm", base=a.base, json={"token": link_token(clink)})
            check_err("confirm token used twice -> 400 invalid_grant", r, 400, "invalid_grant")
            check("login with the new address", login(new, p5, base=a.base).status_code == 200, "")
            if t5r:
                r = call("POST", "/auth/password/reset", base=a.base, json={"token": t5r, "new_password": pw()})
                check_err("an email change voids pending reset tokens", r, 400, "invalid_grant")
        # the hosted form behind a link spends the token on POST (303)
        e6, p6, u6 = register(base=a.base)
        mk = sink.mark()
        call("POST", "/auth/password/forgot", base=a.base, json={"email": e6})
        link6 = mail_link(sink.wait(e6, mk, pred=lambda m: mail_link(m, "reset-password")), "reset-password")
        if link6:
            hs = requests.Session()
            r = hs.get(link6, timeout=10)
            fs = [f for f in forms_of(r.text) if f[1] == "post"]
            if fs:
                action, _, fields = fs[0]
                np6 = pw()
                for k in list(fields):
                    if "password" in k:
                        fields[k] = np6
                fields.setdefault("new_password", np6)
                r = hs.post(urllib.parse.urljoin(link6, action or ""), data=fields, allow_redirects=False, timeout=10)
                check("reset form POST (with its CSRF field) -> 303", r.status_code == 303, _short(r)[:200])
                check("...and the new password works", login(e6, np6, base=a.base).status_code == 200, "")
                r = hs.post(urllib.parse.urljoin(link6, action or ""), data=dict(fields, csrf_token="x", **{k: "x" for k in fields if "csrf" in k}),
                            allow_redirects=False, timeout=10)
                check("reset form POST with a wrong CSRF token is refused (4xx)", 400 <= r.status_code < 500, _short(r)[:200])
            else:
                check("reset page has a POST form", False, r.text[:300])
    finally:
        if a:
            a.stop()
    # expiry, with short lifetimes
    a = None
    try:
        a = Aux("{registrations_per_address_per_hour=0}", extra_env=mail_env(sink, reset_ttl=1, verify_ttl=1))
        e, p, u = register(base=a.base)
        vt = link_token(mail_link(sink.wait(e, 0, pred=lambda m: mail_link(m, "verify-email")), "verify-email"))
        mk = sink.mark()
        call("POST", "/auth/password/forgot", base=a.base, json={"email": e})
        rt = link_token(mail_link(sink.wait(e, mk, pred=lambda m: mail_link(m, "reset-password")), "reset-password"))
        time.sleep(2.5)
        r = call("POST", "/auth/password/reset", base=a.base, json={"token": rt or "x", "new_password": pw()})
        check_err("expired reset token -> 400 invalid_grant", r, 400, "invalid_grant")
        r = call("POST", "/auth/email/verify", base=a.base, json={"token": vt or "x"})
        check_err("expired verification token -> 400 invalid_grant", r, 400, "invalid_grant")
    except Exception as ex:
        check("mail expiry server (reset_ttl=1, verify_ttl=1)", False, repr(ex)[:300])
    finally:
        if a:
            a.stop()
    # require_verified_email
    a = None
    try:
        a = Aux("{registrations_per_address_per_hour=0,require_verified_email=true}", extra_env=mail_env(sink))
        e, p, u = register(base=a.base)
        first = link_token(mail_link(sink.wait(e, 0, pred=lambda m: mail_link(m, "verify-email")), "verify-email"))
        r = login(e, "wrong" + p, base=a.base, src="127.0.0.63")
        check_err("require_verified_email: wrong password -> 401 (checked before verification)", r, 401, "invalid_credentials")
        mk = sink.mark()
        r = login(e, p, base=a.base)
        check_err("require_verified_email: unverified login -> 403 email_unverified", r, 403, "email_unverified")
        resent = sink.wait(e, mk, timeout=10, pred=lambda m: mail_link(m, "verify-email"))
        check("...and that 403 sends a new verification mail", resent is not None, "no mail")
        r = call("POST", "/oauth/token", base=a.base, data={"grant_type": "password", "username": e, "password": p})
        check_err("require_verified_email: password grant -> 403 email_unverified", r, 403, "email_unverified")
        time.sleep(2)
        last = [m for m in sink.to(e) if mail_link(m, "verify-email")]
        tok = link_token(mail_link(last[-1], "verify-email")) if last else first
        r = call("POST", "/auth/email/verify", base=a.base, json={"token": tok})
        check("verify the address -> 204", r.status_code == 204, _short(r))
        r = login(e, p, base=a.base)
        check("require_verified_email: verified login -> 200", r.status_code == 200, _short(r))
        ae, ap = email("cliu"), pw()
        cli_user(a.db, ae, ap, extra_env=a.auth_env())
        check("require_verified_email: accounts from portcullis user create count as verified", login(ae, ap, base=a.base).status_code == 200, "")
    except Exception as ex:
        check("require_verified_email server", False, repr(ex)[:300])
    finally:
        if a:
            a.stop()
        sink.stop()


def sec_passkeys():
    # an IP address cannot be a relying party id: the main server's passkey endpoints answer 503
    r = call("POST", "/auth/passkeys/login", json={})
    check_err("issuer on an IP address: passkey endpoints -> 503 unavailable naming auth.webauthn_rp_id", r, 503, "unavailable",
              "webauthn_rp_id" in (body(r) or {}).get("error_description", ""))
    a = Aux('{issuer="http://localhost:%PORT%",registrations_per_address_per_hour=0}')
    try:
        origin = f"http://localhost:{a.port}"
        e, p, u = register(base=a.base)
        b = login_ok(e, p, base=a.base)
        tok = b["access_token"]
        auth = SoftAuthenticator(origin, "ES256")
        r = call("POST", "/auth/passkeys/register", base=a.base, token=tok, json={"password": "wrong" + p}, src="127.0.0.70")
        check_err("passkey register with a wrong password -> 401 invalid_credentials", r, 401, "invalid_credentials")
        r = call("POST", "/auth/passkeys/register", base=a.base, token=tok, json={"password": p})
        j = body(r) or {}
        pk = j.get("publicKey") or {}
        check("passkey register -> 200 {ceremony_id, publicKey}", r.status_code == 200 and j.get("ceremony_id") and pk.get("challenge"), _short(r))
        check("creation options: rp.id localhost, user.id not the user id, ES256 and EdDSA offered",
              (pk.get("rp") or {}).get("id") in ("localhost", None) and (pk.get("user") or {}).get("id")
              and unb64u(pk["user"]["id"]) != u["id"].encode() and pk["user"]["id"] != u["id"]
              and {-7, -8} <= {x.get("alg") for x in pk.get("pubKeyCredParams", [])}, pk)
        cred = auth.create(pk)
        r = call("POST", "/auth/passkeys/register/finish", base=a.base, token=tok,
                 json={"ceremony_id": j.get("ceremony_id"), "name": "soft key", "credential": cred})
        f = body(r) or {}
        check("register/finish -> 201 {id, name, created_at, last_used_at}", r.status_code == 201
              and set(f) >= {"id", "name", "created_at", "last_used_at"} and f.get("name") == "soft key", _short(r))
        check("the first second factor (a first passkey) returns 10 recovery codes", len(f.get("recovery_codes") or []) == 10, f)
        r = call("POST", "/auth/passkeys/register/finish", base=a.base, token=tok,
                 json={"ceremony_id": j.get("ceremony_id"), "name": "again", "credential": cred})
        check_err("the same ceremony twice -> 400 invalid_grant", r, 400, "invalid_grant")
        r = call("GET", "/auth/passkeys", base=a.base, token=tok)
        check("GET /auth/passkeys lists it", r.status_code == 200 and [x.get("name") for x in (body(r) or {}).get("passkeys", [])] == ["soft key"], _short(r))
        r = call("GET", "/users/me", base=a.base, token=tok)
        check("user object mfa true with a passkey", (body(r) or {}).get("mfa") is True, _short(r))
        # the same credential id again -> 409
        j2 = call("POST", "/auth/passkeys/register", base=a.base, token=tok, json={"password": p}).json()
        dup = SoftAuthenticator(origin, "ES256").create(j2["publicKey"], cred_id=unb64u(cred["id"]))
        r = call("POST", "/auth/passkeys/register/finish", base=a.base, token=tok,
                 json={"ceremony_id": j2["ceremony_id"], "name": "dup", "credential": dup})
        check_err("a credential id already registered -> 409 conflict", r, 409, "conflict")
        # an EdDSA key, and one from an authenticator that never counts
        ed = SoftAuthenticator(origin, "EdDSA", count=False)
        j3 = call("POST", "/auth/passkeys/register", base=a.base, token=tok, json={"password": p}).json()
        r = call("POST", "/auth/passkeys/register/finish", base=a.base, token=tok,
                 json={"ceremony_id": j3["ceremony_id"], "name": "ed key", "credential": ed.create(j3["publicKey"])})
        check("an EdDSA passkey with counter 0 is accepted (201)", r.status_code == 201, _short(r))
        spare = SoftAuthenticator(origin, "ES256")
        js = call("POST", "/auth/passkeys/register", base=a.base, token=tok, json={"password": p}).json()
        r = call("POST", "/auth/passkeys/register/finish", base=a.base, token=tok,
                 json={"ceremony_id": js["ceremony_id"], "name": "spare", "credential": spare.create(js["publicKey"])})
        check("a second ES256 passkey -> 201", r.status_code == 201, _short(r))
        # wrong origin at registration
        j4 = call("POST", "/auth/passkeys/register", base=a.base, token=tok, json={"password": p}).json()
        r = call("POST", "/auth/passkeys/register/finish", base=a.base, token=tok,
                 json={"ceremony_id": j4["ceremony_id"], "name": "phish",
                       "credential": SoftAuthenticator(origin).create(j4["publicKey"], origin="http://evil.localhost:1")})
        check("registration from another origin is refused (4xx)", 400 <= r.status_code < 500, _short(r))
        # passwordless sign-in (discoverable)
        r = call("POST", "/auth/passkeys/login", base=a.base, json={})
        j = body(r) or {}
        check("POST /auth/passkeys/login {} -> 200 {ceremony_id, publicKey}", r.status_code == 200 and j.get("ceremony_id"), _short(r))
        check("request options require user verification", (j.get("publicKey") or {}).get("userVerification") == "required", j.get("publicKey"))
        asn = auth.get(j["publicKey"], cred_id=unb64u(cred["id"]))
        r = call("POST", "/auth/passkeys/login/finish", base=a.base, json={"ceremony_id": j["ceremony_id"], "credential": asn})
        t = body(r) or {}
        check("passwordless sign-in -> 200 token response", r.status_code == 200 and t.get("refresh_token"), _short(r))
        if r.status_code == 200:
            c = decode_any(t["access_token"])
            check("passwordless amr == ['hwk','user','mfa']", c.get("amr") == ["hwk", "user", "mfa"], c.get("amr"))
            check("passwordless token sub is the account", c.get("sub") == u["id"], c)
        r = call("POST", "/auth/passkeys/login/finish", base=a.base, json={"ceremony_id": j["ceremony_id"], "credential": asn})
        check_err("the same sign-in ceremony twice -> 400 invalid_grant", r, 400, "invalid_grant")
        r = call("POST", "/auth/passkeys/login/finish", base=a.base, json={"ceremony_id": str(uuid.uuid4()), "credential": asn})
        check_err("an unknown ceremony -> 400 invalid_grant", r, 400, "invalid_grant")
        j = call("POST", "/auth/passkeys/login", base=a.base, json={}).json()
        r = call("POST", "/auth/passkeys/login/finish", base=a.base,
                 json={"ceremony_id": j["ceremony_id"], "credential": auth.get(j["publicKey"], cred_id=unb64u(cred["id"]), uv=False)}, src="127.0.0.72")
        check("passwordless sign-in without user verification is refused (4xx)", 400 <= r.status_code < 500, _short(r))
        j = call("POST", "/auth/passkeys/login", base=a.base, json={}).json()
        r = call("POST", "/auth/passkeys/login/finish", base=a.base,
                 json={"ceremony_id": j["ceremony_id"], "credential": auth.get(j["publicKey"], cred_id=unb64u(cred["id"]), tamper=True)}, src="127.0.0.72")
        check("a bad signature is refused (4xx)", 400 <= r.status_code < 500, _short(r))
        j = call("POST", "/auth/passkeys/login", base=a.base, json={}).json()
        r = call("POST", "/auth/passkeys/login/finish", base=a.base,
                 json={"ceremony_id": j["ceremony_id"], "credential": auth.get(j["publicKey"], cred_id=unb64u(cred["id"]), origin="http://localhost:1")}, src="127.0.0.72")
        check("an assertion from another origin is refused (4xx)", 400 <= r.status_code < 500, _short(r))
        j = call("POST", "/auth/passkeys/login", base=a.base, json={}).json()
        r = call("POST", "/auth/passkeys/login/finish", base=a.base,
                 json={"ceremony_id": j["ceremony_id"], "credential": ed.get(j["publicKey"])}, src="127.0.0.73")
        check("EdDSA passkey with a signature counter of 0 signs in (200)", r.status_code == 200, _short(r))
        # by email: same shape for unknown accounts
        r1 = call("POST", "/auth/passkeys/login", base=a.base, json={"email": e})
        r2 = call("POST", "/auth/passkeys/login", base=a.base, json={"email": email("nobody")})
        e3, p3, u3 = register(base=a.base)
        r3 = call("POST", "/auth/passkeys/login", base=a.base, json={"email": e3})
        shape = lambda r_: (r_.status_code, sorted((body(r_) or {}).keys()), sorted((body(r_) or {}).get("publicKey", {}).keys()))
        check("passkeys/login with an email: same shape for an account with passkeys, an unknown one and one without",
              shape(r1) == shape(r2) == shape(r3), f"{shape(r1)} {shape(r2)} {shape(r3)}")
        # decoy credential lists vary in length per address (0 included), so a count alone tells nothing
        note("allowCredentials counts: with passkeys / unknown / without passkeys",
             [len((body(x) or {}).get("publicKey", {}).get("allowCredentials") or []) for x in (r1, r2, r3)])
        j = body(r1) or {}
        if r1.status_code == 200:
            r = call("POST", "/auth/passkeys/login/finish", base=a.base, json={"ceremony_id": j["ceremony_id"], "credential": auth.get(j["publicKey"])})
            check("sign-in by email with the passkey -> 200", r.status_code == 200, _short(r))
        # another account's passkey never signs into this one
        b3 = login_ok(e3, p3, base=a.base)
        other = SoftAuthenticator(origin, "ES256")
        jo = call("POST", "/auth/passkeys/register", base=a.base, token=b3["access_token"], json={"password": p3}).json()
        call("POST", "/auth/passkeys/register/finish", base=a.base, token=b3["access_token"],
             json={"ceremony_id": jo["ceremony_id"], "name": "o", "credential": other.create(jo["publicKey"])})
        j = call("POST", "/auth/passkeys/login", base=a.base, json={"email": e}).json()
        r = call("POST", "/auth/passkeys/login/finish", base=a.base, json={"ceremony_id": j["ceremony_id"], "credential": other.get(j["publicKey"] | {"allowCredentials": []})}, src="127.0.0.72")
        check("another account's passkey on this account's ceremony is refused (4xx)", 400 <= r.status_code < 500, _short(r))
        # second step after the password
        r = login(e, p, base=a.base)
        j = body(r) or {}
        check_err("password login of a passkey account -> 403 mfa_required", r, 403, "mfa_required")
        check("mfa_required lists mfa_methods with passkey", "passkey" in (j.get("mfa_methods") or []), j)
        mt = j.get("mfa_token")
        r = call("POST", "/auth/mfa/passkey", base=a.base, json={"mfa_token": mt})
        o = body(r) or {}
        check("POST /auth/mfa/passkey -> 200 options", r.status_code == 200 and o.get("ceremony_id") and o.get("publicKey"), _short(r))
        if r.status_code == 200:
            r = call("POST", "/auth/mfa/verify", base=a.base, json={"mfa_token": mt, "ceremony_id": o["ceremony_id"],
                                                                    "credential": auth.get(o["publicKey"], cred_id=unb64u(cred["id"]))})
            check("second step with the passkey -> 200", r.status_code == 200, _short(r))
            if r.status_code == 200:
                check("second-step amr == ['pwd','hwk','mfa']", decode_any(r.json()["access_token"]).get("amr") == ["pwd", "hwk", "mfa"],
                      decode_any(r.json()["access_token"]).get("amr"))
        # removal
        pks = call("GET", "/auth/passkeys", base=a.base, token=tok).json().get("passkeys", [])
        ed_id = [x["id"] for x in pks if x["name"] == "spare"]
        if ed_id:
            r = call("DELETE", f"/auth/passkeys/{ed_id[0]}", base=a.base, token=tok, json={"password": "bad" + p}, src="127.0.0.71")
            check_err("DELETE passkey with a wrong password -> 401", r, 401, "invalid_credentials")
            r = call("DELETE", f"/auth/passkeys/{ed_id[0]}", base=a.base, token=tok, json={"password": p})
            check("DELETE passkey with the password -> 204", r.status_code == 204, _short(r))
        # a third-party-free check of the user handle: the options' user.id is stable per account and not the id
        # admin reset removes passkeys
        ae, ap = email("pkadm"), pw()
        cli_user(a.db, ae, ap, roles=["admin"], extra_env=a.auth_env())
        at = login_ok(ae, ap, base=a.base)["access_token"]
        r = call("GET", f"/admin/audit?user_id={u['id']}", base=a.base, token=at)
        evs = {x["event"] for x in (body(r) or {}).get("events", [])}
        check("audit has passkey_added, passkey_removed, passkey_login", {"passkey_added", "passkey_removed", "passkey_login"} <= evs, evs)
        r = call("DELETE", f"/admin/users/{u['id']}/mfa", base=a.base, token=at)
        check("DELETE /admin/users/<id>/mfa -> 204", r.status_code == 204, _short(r))
        r = login(e, p, base=a.base)
        check("...removes the passkeys: password login 200", r.status_code == 200, _short(r))
    finally:
        a.stop()


APPROVE_RE = re.compile(r"approve|allow|accept|yes|grant|consent|continue", re.I)


def browser_walk(br, resp, redirect_prefix, e=None, p=None, approve=True, max_steps=12):
    """Follows the hosted pages like a person with a browser: redirects, the sign-in form (email and
    password plus its hidden fields, CSRF included) and the consent form, until a redirect to the
    client (returned as the Location) or a page that is neither (returned as the response)."""
    for _ in range(max_steps):
        if resp.status_code in (301, 302, 303, 307):
            loc = urllib.parse.urljoin(resp.url, resp.headers.get("location", ""))
            if loc.startswith(redirect_prefix):
                return loc
            resp = br.get(loc, allow_redirects=False, timeout=20)
            continue
        if resp.status_code != 200 or "html" not in resp.headers.get("content-type", ""):
            return resp
        parser = HiddenForm()
        parser.feed(resp.text)
        forms = [f for f in parser.forms if f[1] == "post"]
        if not forms:
            return resp
        action, _, fields = forms[0]
        names = list(fields)
        if any("password" in n for n in names):
            if e is None:
                return resp
            for n in names:
                if "email" in n or n in ("username", "login"):
                    fields[n] = e
                elif "password" in n:
                    fields[n] = p
        else:
            # consent: pick the approving (or denying) submit button
            btns = re.findall(r"<button[^>]*name=[\"']([^\"']+)[\"'][^>]*value=[\"']([^\"']+)[\"']", resp.text)
            for n, v in btns:
                if bool(APPROVE_RE.search(v)) == approve:
                    fields[n] = v
                    break
        resp = br.post(urllib.parse.urljoin(resp.url, action or ""), data=fields, allow_redirects=False, timeout=20)
    return resp


def code_flow(meta, client_id, redirect, e, p, secret=None, scope="openid email", br=None, approve=True, **extra):
    """authlib's OAuth2Session with PKCE S256 through the hosted pages; returns a dict of what happened."""
    verifier = generate_token(48)
    nonce = uuid.uuid4().hex
    s = OAuth2Session(client_id=client_id, client_secret=secret, redirect_uri=redirect, scope=scope,
                      code_challenge_method="S256",
                      token_endpoint_auth_method="client_secret_basic" if secret else "none")
    url, state = s.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **extra)
    br = br or requests.Session()
    out = {"session": s, "verifier": verifier, "nonce": nonce, "state": state, "browser": br}
    res = browser_walk(br, br.get(url, allow_redirects=False, timeout=20), redirect, e, p, approve=approve)
    if isinstance(res, str):
        out["location"] = res
        out["query"] = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(res).query))
    else:
        out["page"] = res
    return out


def verify_id_token(meta, id_token, client_id, nonce=None, access_token=None):
    jc = jwt.PyJWKClient(meta["jwks_uri"])
    hdr = jwt.get_unverified_header(id_token)
    key = jc.get_signing_key_from_jwt(id_token)
    c = jwt.decode(id_token, key.key, algorithms=["RS256", "EdDSA"], audience=client_id, issuer=meta["issuer"],
                   options={"require": ["iss", "sub", "aud", "exp", "iat"]})
    if access_token and c.get("at_hash"):
        h = hashlib.sha256 if hdr.get("alg") == "RS256" else hashlib.sha512
        d = h(access_token.encode()).digest()
        c["_at_hash_ok"] = c["at_hash"] == b64u(d[:len(d) // 2])
    return hdr, c


def sec_browser():
    r = call("GET", "/oauth/authorize")
    if r.status_code == 404:
        note("browser: GET /oauth/authorize answers 404 (the authorization-code flow is not built here yet); section skipped",
             _short(r)[:120])
        return
    meta = call("GET", "/.well-known/openid-configuration").json()
    issuer = meta["issuer"]
    adm = admin_token()
    redirect = "http://127.0.0.1:9/cb"
    pc = mk_client_ok(adm, type="public", redirect_uris=[redirect], post_logout_redirect_uris=["http://127.0.0.1:9/bye"], first_party=True)
    cid = pc["client_id"]
    e, p, u = register()
    f = code_flow(meta, cid, redirect, e, p)
    q = f.get("query", {})
    check("authorize -> sign-in form -> redirect to the client with code, state, iss",
          q.get("code") and q.get("state") == f["state"] and q.get("iss") == issuer,
          f.get("location") or _short(f.get("page"))[:300])
    if not q.get("code"):
        return
    check("code carries >= 256 bits (>= 43 chars)", len(q["code"]) >= 43, q["code"])
    s = f["session"]
    try:
        t = s.fetch_token(meta["token_endpoint"], authorization_response=f["location"], code_verifier=f["verifier"])
        check("authlib exchanges the code (public client, PKCE) -> token response with id_token and scope",
              t.get("access_token") and t.get("id_token") and t.get("refresh_token") and "openid" in t.get("scope", ""), t)
    except Exception as ex:
        check("authlib exchanges the code", False, repr(ex))
        return
    hdr, c = verify_id_token(meta, t["id_token"], cid, f["nonce"], t["access_token"])
    check("id_token: RS256 by default, verified with the JWKS (PyJWT)", hdr.get("alg") == "RS256", hdr)
    check("id_token claims: sub, nonce, auth_time, amr, sid, email, email_verified",
          c.get("sub") == u["id"] and c.get("nonce") == f["nonce"] and isinstance(c.get("auth_time"), int)
          and c.get("amr") and c.get("sid") and c.get("email") == e and "email_verified" in c, c)
    check("id_token at_hash matches the access token", c.get("_at_hash_ok") is True, c.get("at_hash"))
    check("id_token lives access_ttl", c["exp"] - c["iat"] == 900, c)
    try:
        key_set = JsonWebKey.import_key_set(call("GET", "/.well-known/jwks.json").json())
        claims = jose_jwt.decode(t["id_token"], key_set, claims_cls=CodeIDToken,
                                 claims_options={"iss": {"essential": True, "value": issuer}},
                                 claims_params={"nonce": f["nonce"], "client_id": cid, "access_token": t["access_token"]})
        claims.validate()
        check("authlib CodeIDToken validates the id_token (iss, aud, nonce, at_hash)", True)
    except Exception as ex:
        check("authlib CodeIDToken validates the id_token", False, repr(ex))
    at = decode(t["access_token"])
    check("access token of the code session: client_id is the client, sid = id_token sid",
          at.get("client_id") == cid and at.get("sid") == c.get("sid"), at)
    r = requests.get(meta["userinfo_endpoint"], headers={"Authorization": "Bearer " + t["access_token"]}, timeout=10)
    ui = body(r) or {}
    check("userinfo: sub, email, email_verified", r.status_code == 200 and ui.get("sub") == u["id"] and ui.get("email") == e
          and "email_verified" in ui, _short(r))
    r = requests.post(meta["userinfo_endpoint"], headers={"Authorization": "Bearer " + t["access_token"]}, timeout=10)
    check("POST userinfo works too", r.status_code == 200, _short(r))
    r = requests.get(meta["userinfo_endpoint"], headers={"Authorization": "Bearer " + login_ok(e, p)["access_token"]}, timeout=10)
    check("userinfo with a session without openid -> 401/403", r.status_code in (401, 403), _short(r))
    # the code is single-use; a second exchange ends the session the first started
    r = call("POST", "/oauth/token", data={"grant_type": "authorization_code", "code": q["code"], "redirect_uri": redirect,
                                           "code_verifier": f["verifier"], "client_id": cid})
    check_err("second exchange of a code -> 400 invalid_grant", r, 400, "invalid_grant")
    r = call("GET", "/users/me", token=t["access_token"])
    check_err("...and the session the first exchange started ends", r, 401, "invalid_token")
    # PKCE and redirect_uri are checked
    f = code_flow(meta, cid, redirect, e, p, br=f["browser"])
    code = f.get("query", {}).get("code")
    check("single sign-on: a second authorize with the browser session needs no password", code is not None,
          f.get("location") or _short(f.get("page"))[:200])
    if code:
        r = call("POST", "/oauth/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
                                               "code_verifier": generate_token(48), "client_id": cid})
        check_err("wrong code_verifier -> 400 invalid_grant", r, 400, "invalid_grant")
    f = code_flow(meta, cid, redirect, e, p, br=f["browser"])
    code = f.get("query", {}).get("code")
    if code:
        r = call("POST", "/oauth/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect + "x",
                                               "code_verifier": f["verifier"], "client_id": cid})
        check_err("another redirect_uri at the exchange -> 400 invalid_grant", r, 400, "invalid_grant")
    # refresh: new id_token with the original auth_time
    f = code_flow(meta, cid, redirect, e, p, br=f["browser"])
    t = f["session"].fetch_token(meta["token_endpoint"], authorization_response=f["location"], code_verifier=f["verifier"])
    _, c1 = verify_id_token(meta, t["id_token"], cid)
    n = call("POST", "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": t["refresh_token"], "client_id": cid})
    check("public client refreshes with client_id -> 200 with a new id_token", n.status_code == 200 and (body(n) or {}).get("id_token"), _short(n))
    if n.status_code == 200 and n.json().get("id_token"):
        _, c2 = verify_id_token(meta, n.json()["id_token"], cid)
        check("refreshed id_token keeps auth_time", c2.get("auth_time") == c1.get("auth_time"), (c1.get("auth_time"), c2.get("auth_time")))
    r = call("POST", "/auth/refresh", json={"refresh_token": (body(n) or {}).get("refresh_token", "")})
    check("public client's session may refresh at /auth/refresh", r.status_code == 200, _short(r))
    # errors before the client and redirect URI are validated: an error page, never a redirect
    br = requests.Session()
    v = generate_token(48)
    ch = create_s256_code_challenge(v)
    base_q = {"response_type": "code", "client_id": cid, "redirect_uri": redirect, "scope": "openid", "state": "st",
              "code_challenge": ch, "code_challenge_method": "S256"}
    for label, qq in (("unregistered redirect_uri", dict(base_q, redirect_uri="http://127.0.0.1:9/other")),
                      ("unknown client_id", dict(base_q, client_id=str(uuid.uuid4()))),
                      ("redirect_uri with another host", dict(base_q, redirect_uri="https://evil.example/cb"))):
        r = br.get(meta["authorization_endpoint"] + "?" + urllib.parse.urlencode(qq), allow_redirects=False, timeout=10)
        check(f"authorize with {label}: an error page, no redirect", r.status_code >= 400 and "location" not in r.headers, _short(r)[:200])
    for label, qq, err in (("no code_challenge", {k: v_ for k, v_ in base_q.items() if not k.startswith("code_challenge")}, "invalid_request"),
                           ("code_challenge_method plain", dict(base_q, code_challenge=v, code_challenge_method="plain"), "invalid_request"),
                           ("response_type token", dict(base_q, response_type="token"), "unsupported_response_type"),
                           ("prompt=none without a browser session", dict(base_q, prompt="none"), "login_required")):
        r = br.get(meta["authorization_endpoint"] + "?" + urllib.parse.urlencode(qq), allow_redirects=False, timeout=10)
        loc = r.headers.get("location", "")
        qs = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
        check(f"authorize with {label}: redirect with error, state and iss", r.status_code in (302, 303)
              and loc.startswith(redirect) and qs.get("error") == err and qs.get("state") == "st" and qs.get("iss") == issuer,
              _short(r)[:200] + " " + loc)
    # a third-party client: consent page, remembered, listed, revocable
    tp = mk_client_ok(adm, type="confidential", grant_types=["authorization_code", "refresh_token"], redirect_uris=[redirect])
    e2, p2, u2 = register()
    f = code_flow(meta, tp["client_id"], redirect, e2, p2, secret=tp["client_secret"], approve=False)
    check("third-party client: denying consent -> redirect with error access_denied", f.get("query", {}).get("error") == "access_denied",
          f.get("location") or _short(f.get("page"))[:300])
    f = code_flow(meta, tp["client_id"], redirect, e2, p2, secret=tp["client_secret"])
    q = f.get("query", {})
    check("third-party client: approving consent -> code", q.get("code") is not None, f.get("location") or _short(f.get("page"))[:300])
    if q.get("code"):
        t = f["session"].fetch_token(meta["token_endpoint"], authorization_response=f["location"], code_verifier=f["verifier"])
        check("confidential client exchanges its code with client_secret_basic", t.get("access_token") is not None, t)
        r = call("GET", "/users/me/consents", token=login_ok(e2, p2)["access_token"])
        cs = (body(r) or {}).get("consents", [])
        check("GET /users/me/consents lists the approval", any(x.get("client_id") == tp["client_id"] and set(x) >= {"client_id", "name", "scope", "granted_at"} for x in cs), _short(r))
        f2 = code_flow(meta, tp["client_id"], redirect, e2, p2, secret=tp["client_secret"], br=f["browser"], prompt="none")
        check("remembered consent: prompt=none answers a code", f2.get("query", {}).get("code") is not None, f2.get("location") or _short(f2.get("page"))[:200])
        r = call("DELETE", f"/users/me/consents/{tp['client_id']}", token=login_ok(e2, p2)["access_token"])
        check("DELETE /users/me/consents/<client_id> -> 204", r.status_code == 204, _short(r))
        r = call("GET", "/users/me", token=t["access_token"])
        check_err("...and that client's sessions of the user end", r, 401, "invalid_token")
        f3 = code_flow(meta, tp["client_id"], redirect, e2, p2, secret=tp["client_secret"], br=f["browser"], prompt="none")
        check("revoked consent: prompt=none -> consent_required", f3.get("query", {}).get("error") == "consent_required",
              f3.get("location") or _short(f3.get("page"))[:200])
    # RP-initiated logout
    f = code_flow(meta, cid, redirect, e, p)
    if f.get("location"):
        t = f["session"].fetch_token(meta["token_endpoint"], authorization_response=f["location"], code_verifier=f["verifier"])
        r = f["browser"].get(meta["end_session_endpoint"] + "?" + urllib.parse.urlencode(
            {"id_token_hint": t["id_token"], "post_logout_redirect_uri": "http://127.0.0.1:9/bye", "state": "bye"}),
            allow_redirects=False, timeout=10)
        check("RP-initiated logout with id_token_hint -> redirect to the registered post_logout_redirect_uri with state",
              r.status_code in (302, 303) and r.headers.get("location", "").startswith("http://127.0.0.1:9/bye")
              and "state=bye" in r.headers.get("location", ""), _short(r)[:200])
        r = call("GET", "/users/me", token=t["access_token"])
        check_err("...and the sessions started from the browser session end", r, 401, "invalid_token")
    # hosted pages headers
    r = requests.get(meta["authorization_endpoint"] + "?" + urllib.parse.urlencode(base_q), timeout=10)
    check("sign-in page headers: frame-ancestors 'none', nosniff, no-store",
          "frame-ancestors 'none'" in r.headers.get("content-security-policy", "")
          and r.headers.get("x-content-type-options") == "nosniff" and "no-store" in r.headers.get("cache-control", ""), dict(r.headers))
    sc = r.headers.get("set-cookie", "")
    note("browser-session cookie attributes (HttpOnly, SameSite=Lax)", sc[:200])


def sec_registration_limit():
    a = Aux("{registrations_per_address_per_hour=3}")
    try:
        e, p, u = register(base=a.base, src="127.0.0.80")
        r = call("POST", "/auth/register", base=a.base, json={"email": e, "password": pw()}, src="127.0.0.80")
        check_err("registration limit: a duplicate -> 409", r, 409, "conflict")
        r = call("POST", "/auth/register", base=a.base, json={"email": email(), "password": pw()}, src="127.0.0.80")
        check("registration limit: the 3rd attempt (the 409 counted) -> 201", r.status_code == 201, _short(r))
        r = call("POST", "/auth/register", base=a.base, json={"email": email(), "password": pw()}, src="127.0.0.80")
        check("registration limit: the 4th attempt in the hour -> 429 + Retry-After (409s count)",
              is_err(r, 429, "too_many_requests") and r.headers.get("retry-after", "").isdigit(), _short(r))
        r = call("POST", "/auth/register", base=a.base, json={"email": email(), "password": pw()}, src="127.0.0.81")
        check("registration limit: another address -> 201", r.status_code == 201, _short(r))
    finally:
        a.stop()
    a = Aux("{}")
    try:
        codes = [call("POST", "/auth/register", base=a.base, json={"email": email(), "password": pw()}, src="127.0.0.82").status_code
                 for _ in range(11)]
        check("registration limit default 10 an hour per address", codes[:10] == [201] * 10 and codes[10] == 429, codes)
    finally:
        a.stop()


SECTIONS = [
    ("ops", sec_ops), ("metadata", sec_metadata_jwks), ("accounts", sec_accounts), ("refresh", sec_refresh),
    ("grace", sec_refresh_grace), ("oauth", sec_oauth), ("clients", sec_clients), ("mfa", sec_mfa),
    ("mfaroles", sec_mfa_required_roles), ("admin", sec_admin), ("throttle", sec_throttle),
    ("cap", sec_session_cap), ("boundary", sec_grace_boundary), ("limits", sec_limits),
    ("keys", sec_keys), ("misc", sec_misc), ("postgres", sec_postgres), ("hs256", sec_hs256), ("closed", sec_registration_closed), ("metrics", sec_metrics),
    # version 3
    ("discovery", sec_discovery), ("issuer", sec_issuer), ("clients3", sec_clients3), ("scope", sec_scope),
    ("audience", sec_audience), ("reglimit", sec_registration_limit), ("mail", sec_mail), ("passkeys", sec_passkeys), ("browser", sec_browser),
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
