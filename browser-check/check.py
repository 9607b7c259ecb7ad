"""The hosted pages in a real browser: headless Chromium (Playwright) signs in through them.

Started by browser-check/run, which passes PORTCULLIS_BIN, SCREENSHOTS (a folder) and CHROMIUM.
Starts Portcullis on a fresh SQLite file with the issuer http://localhost:<port> (browsers allow
WebAuthn there), creates users and clients with the command line, serves a tiny redirect URI
(http://127.0.0.1:<port>/cb), and checks:

  a. email + password on the sign-in page lands on the redirect URI with a code (exchanged);
  b. an account with TOTP: the code page, a pyotp code, the redirect;
  c. /account shows the QR code (an <svg>) once TOTP enrolment starts;
  d. a passkey added on /account with a CDP virtual authenticator, then signing in with it;
  e. a screenshot of each page at phone width (420x860) into SCREENSHOTS.

Prints one PASS/FAIL line per check and a closing "browser: N passed, N failed" line; exits 1
when a check failed.
"""

import base64
import hashlib
import http.server
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

import pyotp
from playwright.sync_api import sync_playwright

BIN = os.environ["PORTCULLIS_BIN"]
SHOTS = os.environ.get("SCREENSHOTS") or tempfile.mkdtemp()
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PASSWORD = "browser check password 7"
VIEWPORT = {"width": 420, "height": 860}
TIMEOUT_MS = 15000

results = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Callback(http.server.BaseHTTPRequestHandler):
    """The client's redirect URI: records what it was sent, answers a small page."""

    def do_GET(self):
        body = b"<!doctype html><title>Client</title><p>Back at the client.</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def check(name):
    def run(fn):
        try:
            fn()
            results.append((name, None))
            print(f"PASS {name}", flush=True)
        except Exception as e:  # noqa: BLE001 -- every failure is reported, the others still run
            results.append((name, e))
            print(f"FAIL {name}: {e}", flush=True)
            traceback.print_exc(limit=3)
        return fn

    return run


def main():
    work = tempfile.mkdtemp()
    port = free_port()
    base = f"http://localhost:{port}"
    env = dict(
        os.environ,
        ROCKET_ADDRESS="127.0.0.1",
        ROCKET_PORT=str(port),
        ROCKET_DATABASES=f'{{main={{url="{work}/portcullis.db"}}}}',
        ROCKET_AUTH=f'{{issuer="{base}",display_name="Example Co"}}',
        ROCKET_LOG_LEVEL="critical",
    )

    def cli(*args, stdin=None):
        out = subprocess.run([BIN, *args], env=env, cwd=work, input=stdin, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"portcullis {' '.join(args)}: {out.stderr or out.stdout}")
        return out.stdout

    cb_port = free_port()
    callback = http.server.ThreadingHTTPServer(("127.0.0.1", cb_port), Callback)
    threading.Thread(target=callback.serve_forever, daemon=True).start()
    redirect = f"http://127.0.0.1:{cb_port}/cb"

    users = {name: f"{name}@example.com" for name in ("alice", "bob", "carol")}
    for email in users.values():
        cli("user", "create", "--email", email, "--password-stdin", stdin=PASSWORD + "\n")

    def client(name, *extra):
        out = cli("client", "create", "--name", name, "--type", "public", "--redirect-uri", redirect,
                  "--grant-type", "authorization_code", *extra)
        return next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("client_id: "))

    first_party = client("Example Notes", "--first-party")
    third_party = client("Photo Printer")

    server = subprocess.Popen([BIN, "serve"], env=env, cwd=work, stdout=open(f"{work}/server.log", "w"),
                              stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=1)
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None:
                    raise RuntimeError("the server exited: " + open(f"{work}/server.log").read())
                time.sleep(0.1)
        run_checks(base, redirect, users, first_party, third_party)
    finally:
        server.terminate()
        server.wait(timeout=10)
        callback.shutdown()

    failed = sum(1 for _, e in results if e)
    print(f"screenshots: {SHOTS}")
    print(f"browser: {len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def api(base, path, body, token=None):
    """A JSON POST to the API: (status, answer)."""
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def pkce():
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_url(base, client_id, redirect, challenge, **extra):
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect, "scope": "openid email",
              "state": "st-browser", "code_challenge": challenge, "code_challenge_method": "S256", **extra}
    return f"{base}/oauth/authorize?{urllib.parse.urlencode(params)}"


def landed(page, redirect):
    """Waits for the browser to reach the redirect URI; its query parameters."""
    page.wait_for_url(lambda url: url.startswith(redirect), timeout=TIMEOUT_MS)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))
    assert query.get("state") == "st-browser", f"state in {page.url}"
    assert "code" in query, f"no code in {page.url}"
    return query


def exchange(base, client_id, redirect, code, verifier):
    body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
                                   "client_id": client_id, "code_verifier": verifier}).encode()
    request = urllib.request.Request(f"{base}/oauth/token", data=body, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request) as response:
        tokens = json.loads(response.read())
    assert "id_token" in tokens and "access_token" in tokens, tokens
    return tokens


def shot(page, name):
    page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def run_checks(base, redirect, users, first_party, third_party):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        context = browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        script_errors = []
        page.on("pageerror", lambda e: script_errors.append(str(e)))

        @check("a. email and password on the sign-in page land on the redirect URI with a code")
        def _():
            verifier, challenge = pkce()
            page.goto(authorize_url(base, first_party, redirect, challenge))
            assert page.get_by_role("heading", name="Sign in").is_visible()
            assert page.get_by_role("button", name="Sign in with a passkey").is_visible(), "the passkey button"
            assert page.locator("#email").get_attribute("autocomplete") == "username webauthn"
            shot(page, "browser-signin")
            page.fill("#email", users["alice"])
            page.fill("#password", PASSWORD)
            page.get_by_role("button", name="Sign in", exact=True).click()
            query = landed(page, redirect)
            assert query.get("iss") == base, query
            exchange(base, first_party, redirect, query["code"], verifier)

        @check("a. a wrong password shows the page again with the API's words")
        def _():
            other = browser.new_context(viewport=VIEWPORT)
            wrong = other.new_page()
            wrong.goto(authorize_url(base, first_party, redirect, pkce()[1]))
            wrong.fill("#email", users["carol"])
            wrong.fill("#password", "not the password")
            wrong.get_by_role("button", name="Sign in", exact=True).click()
            wrong.wait_for_selector("p.error")
            shot(wrong, "browser-signin-refused")
            other.close()

        @check("a. single sign-on: a third-party client's consent page, then the code")
        def _():
            verifier, challenge = pkce()
            page.goto(authorize_url(base, third_party, redirect, challenge))
            assert page.get_by_role("heading", name="Allow Photo Printer?").is_visible()
            shot(page, "browser-consent")
            page.get_by_role("button", name="Allow").click()
            query = landed(page, redirect)
            exchange(base, third_party, redirect, query["code"], verifier)

        @check("b. an account with TOTP: the code page, a pyotp code, the redirect")
        def _():
            status, login = api(base, "/auth/login", {"email": users["bob"], "password": PASSWORD})
            assert status == 200, login
            status, enrolment = api(base, "/auth/mfa/totp", {"password": PASSWORD}, login["access_token"])
            assert status == 201, enrolment
            totp = pyotp.TOTP(enrolment["secret"])
            status, codes = api(base, "/auth/mfa/totp/confirm", {"code": totp.now()}, login["access_token"])
            assert status == 200, codes
            other = browser.new_context(viewport=VIEWPORT)
            mfa = other.new_page()
            verifier, challenge = pkce()
            mfa.goto(authorize_url(base, first_party, redirect, challenge))
            mfa.fill("#email", users["bob"])
            mfa.fill("#password", PASSWORD)
            mfa.get_by_role("button", name="Sign in", exact=True).click()
            mfa.wait_for_url("**/signin/mfa?**")
            assert mfa.get_by_role("heading", name="Enter your code").is_visible()
            shot(mfa, "browser-mfa")
            # The confirmation claimed this step's code; the next step's is accepted (one step of skew).
            mfa.fill("#code", totp.at(time.time() + 30))
            mfa.get_by_role("button", name="Continue").click()
            query = landed(mfa, redirect)
            tokens = exchange(base, first_party, redirect, query["code"], verifier)
            claims = json.loads(base64.urlsafe_b64decode(tokens["id_token"].split(".")[1] + "=="))
            assert "otp" in claims.get("amr", []), claims
            other.close()

        @check("c. /account shows the QR code (an <svg>) once TOTP enrolment starts")
        def _():
            page.goto(f"{base}/account")
            assert page.get_by_role("heading", name="Passkeys").is_visible()
            shot(page, "browser-account")
            section = page.locator("#totp")
            section.get_by_label("Your password", exact=False).first.fill(PASSWORD)
            section.get_by_role("button").first.click()
            page.wait_for_selector("svg")
            assert page.locator("svg").count() >= 1
            shot(page, "browser-account-totp")

        @check("d. a passkey added on /account (virtual authenticator), then signing in with it")
        def _():
            cdp = context.new_cdp_session(page)
            cdp.send("WebAuthn.enable")
            cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
                "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True}})
            page.goto(f"{base}/account")
            form = page.locator("form[data-passkey=register]")
            assert form.is_visible(), "the add-a-passkey form"
            form.get_by_label("Name").fill("Test laptop")
            form.get_by_label("Your password", exact=False).fill(PASSWORD)
            form.get_by_role("button", name="Add a passkey").click()
            page.wait_for_selector("text=The passkey was added")
            assert page.get_by_text("Test laptop").first.is_visible()
            shot(page, "browser-passkey-added")
            # A fresh sign-in in this browser (the authenticator stays, the cookies go).
            context.clear_cookies()
            verifier, challenge = pkce()
            page.goto(authorize_url(base, first_party, redirect, challenge))
            try:
                page.get_by_role("button", name="Sign in with a passkey").click(timeout=3000)
            except Exception:  # noqa: BLE001 -- autofill (conditional UI) may have signed in already
                pass
            query = landed(page, redirect)
            tokens = exchange(base, first_party, redirect, query["code"], verifier)
            claims = json.loads(base64.urlsafe_b64decode(tokens["id_token"].split(".")[1] + "=="))
            assert "hwk" in claims.get("amr", []), claims

        @check("e. an authorization request that cannot be redirected shows the error page")
        def _():
            response = page.goto(f"{base}/oauth/authorize?client_id=nobody&response_type=code")
            assert response.status == 400
            shot(page, "browser-error")

        @check("the pages ran their script without errors")
        def _():
            assert not script_errors, script_errors

        browser.close()


if __name__ == "__main__":
    main()
