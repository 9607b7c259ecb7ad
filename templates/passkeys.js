// The hosted pages' only script: passkeys, which need navigator.credentials (WebAuthn Level 3).
// Served as /pages/passkeys.js and allowed (script-src 'self') only on the pages that use it.
// Each page works without it; the passkey parts stay hidden then.
//
// A form marked data-passkey="signin" | "second-step" | "register" | "reset" is the hosted form this
// script fills (ceremony_id, credential = JSON of PublicKeyCredential.toJSON()) and submits, so
// the browser follows the server's 303 as after any form: the server finishes the ceremony with
// the API's own function (docs/passkeys.md, docs/browser-sign-in.md).
"use strict";

(() => {
  const supported = typeof window.PublicKeyCredential === "function" && !!navigator.credentials;

  // base64url <-> ArrayBuffer, for browsers without the Level 3 JSON helpers.
  const toBytes = (text) => {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const raw = atob(base64 + "===".slice((base64.length + 3) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0)).buffer;
  };
  const toText = (buffer) =>
    btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

  const requestOptions = (json) => {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    const options = { ...json, challenge: toBytes(json.challenge) };
    options.allowCredentials = (json.allowCredentials || []).map((c) => ({ ...c, id: toBytes(c.id) }));
    return options;
  };
  const creationOptions = (json) => {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    const options = { ...json, challenge: toBytes(json.challenge), user: { ...json.user, id: toBytes(json.user.id) } };
    options.excludeCredentials = (json.excludeCredentials || []).map((c) => ({ ...c, id: toBytes(c.id) }));
    return options;
  };
  const credentialJson = (credential) => {
    if (typeof credential.toJSON === "function") return credential.toJSON();
    const response = {};
    for (const name of ["clientDataJSON", "attestationObject", "authenticatorData", "signature", "userHandle"]) {
      if (credential.response[name]) response[name] = toText(credential.response[name]);
    }
    return { id: credential.id, rawId: toText(credential.rawId), type: credential.type, response,
      clientExtensionResults: credential.getClientExtensionResults() };
  };

  // POSTs `body` (an object as JSON, or a URLSearchParams as a form) and answers the JSON, or
  // throws the API's error_description.
  const post = async (path, body) => {
    const json = !(body instanceof URLSearchParams);
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": json ? "application/json" : "application/x-www-form-urlencoded" },
      body: json ? JSON.stringify(body) : body,
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.error_description || "The request failed (" + response.status + ").");
    return answer;
  };

  const showError = (form, message) => {
    const box = document.getElementById(form.dataset.errorBox || "passkey-error");
    if (box) {
      box.textContent = message;
      box.hidden = false;
    }
  };

  // A user who closes the browser's dialog is no error worth showing.
  const quiet = (error) => error && (error.name === "NotAllowedError" || error.name === "AbortError");

  const finish = (form, ceremonyId, credential) => {
    form.elements.ceremony_id.value = ceremonyId;
    form.elements.credential.value = JSON.stringify(credentialJson(credential));
    form.submit();
  };

  // Sign-in page: the button, and passkeys offered in the email field's autofill (conditional UI).
  const signIn = (form) => {
    let pending = null;
    const run = async (conditional) => {
      if (pending) pending.abort();
      const controller = new AbortController();
      pending = controller;
      const start = await post("/auth/passkeys/login", {});
      const options = { publicKey: requestOptions(start.publicKey), signal: controller.signal };
      if (conditional) options.mediation = "conditional";
      const credential = await navigator.credentials.get(options);
      if (credential) finish(form, start.ceremony_id, credential);
    };
    const button = form.querySelector("[data-passkey-start]");
    button.hidden = false;
    button.addEventListener("click", () => run(false).catch((e) => quiet(e) || showError(form, e.message)));
    if (PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then((available) => {
        if (available && !pending) run(true).catch(() => {});
      });
    }
  };

  // The form's fields `names` that it has, as a form body (a page may leave some out).
  const fieldsOf = (form, names) => {
    const fields = new URLSearchParams();
    for (const name of names) if (form.elements[name]) fields.set(name, form.elements[name].value);
    return fields;
  };

  // Code page: the passkey instead of a code; the server keeps the password step's token.
  const secondStep = (form) => {
    const button = form.querySelector("[data-passkey-start]");
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        const fields = fieldsOf(form, ["csrf", "request"]);
        const start = await post(form.dataset.start, fields);
        const credential = await navigator.credentials.get({ publicKey: requestOptions(start.publicKey) });
        if (credential) finish(form, start.ceremony_id, credential);
      } catch (e) {
        if (!quiet(e)) showError(form, e.message);
      }
    });
  };

  // Account page: the name and the re-authentication (password or code) start the ceremony, then
  // the authenticator makes the new passkey; the form posts it without the password or code.
  const register = (form) => {
    form.hidden = false;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const box = document.getElementById(form.dataset.errorBox || "passkey-error");
      if (box) box.hidden = true;
      try {
        const start = await post(form.dataset.start, fieldsOf(form, ["csrf", "name", "password", "code"]));
        const credential = await navigator.credentials.create({ publicKey: creationOptions(start.publicKey) });
        for (const name of ["password", "code"]) if (form.elements[name]) form.elements[name].value = "";
        if (credential) finish(form, start.ceremony_id, credential);
      } catch (e) {
        if (!quiet(e)) showError(form, e.message);
      }
    });
  };

  // Reset-password page: a passkey of this browser instead of the code, as the second factor of
  // the reset (the ceremony names no account; the server checks that the passkey is the account's).
  const reset = (form) => {
    const button = form.querySelector("[data-passkey-start]");
    button.hidden = false;
    button.addEventListener("click", async () => {
      if (!form.elements.new_password.reportValidity()) return;
      try {
        const start = await post("/auth/passkeys/login", {});
        const credential = await navigator.credentials.get({ publicKey: requestOptions(start.publicKey) });
        form.elements.code.value = "";
        if (credential) finish(form, start.ceremony_id, credential);
      } catch (e) {
        if (!quiet(e)) showError(form, e.message);
      }
    });
  };

  if (!supported) return;
  const kinds = { signin: signIn, "second-step": secondStep, register, reset };
  for (const form of document.querySelectorAll("form[data-passkey]")) {
    const setUp = kinds[form.dataset.passkey];
    if (setUp) setUp(form);
  }
  const fallback = document.getElementById("passkey-unsupported");
  if (fallback) fallback.hidden = true;
})();
