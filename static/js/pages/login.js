// Login: username and password, then (with 2FA on) a code from the
// authenticator or a recovery code; a forced password change after an
// admin's reset, or the 2FA enrolment a role requires. Failures are shown as the API words them: a wrong password,
// an unknown user and a locked account look alike on purpose.

import { ApiProblem, call, loadMe, login, loginMfa, logout, pendingStep, refresh } from "../api.js";
import { field, h, problemText } from "../ui.js";

function failureText(err) {
  if (!(err instanceof ApiProblem)) return `The server could not be reached (${err.message}).`;
  if (err.status === 401 && err.problem.type?.endsWith(":invalid-credentials")) {
    return "Invalid credentials. After five failed attempts the account is locked for a while (an admin can unlock it); the message stays the same while it is locked.";
  }
  if (err.status === 429) {
    return `Too many attempts: login is locked or throttled for now. ${err.problem.detail || ""} Wait and try again, or ask an admin to unlock the account.`;
  }
  if (err.status === 422) return problemText(err);
  return problemText(err);
}

export function loginPage({ next, pending, done }) {
  const message = h("p", { id: "login-message", class: "form-error", role: "alert" });
  const box = h("section", { class: "login page", "aria-labelledby": "page-title" });
  document.title = "Log in — Vigil";

  const fail = (err) => {
    message.textContent = failureText(err);
  };

  function passwordStep() {
    const username = h("input", { name: "username", autocomplete: "username", required: true, maxlength: "64" });
    const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
    const form = h(
      "form",
      { class: "stack", id: "login-form" },
      field("Username", username),
      field("Password", password),
      h("button", { type: "submit" }, "Log in"),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      message.textContent = "";
      form.querySelector("button").disabled = true;
      try {
        const outcome = await login(username.value, password.value);
        if (outcome.mfaToken) mfaStep(outcome.mfaToken);
        else finish();
      } catch (err) {
        fail(err);
      } finally {
        form.querySelector("button").disabled = false;
      }
    });
    show("Log in to Vigil", form);
    username.focus();
  }

  function mfaStep(mfaToken) {
    const code = h("input", { name: "code", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9 ]{6,8}", required: true });
    const useRecovery = h("input", { type: "checkbox", name: "use-recovery" });
    const recovery = h("input", { name: "recovery_code", autocomplete: "off", disabled: true });
    const recoveryField = field("Recovery code", recovery, "Each recovery code works once.");
    recoveryField.hidden = true;
    useRecovery.addEventListener("change", () => {
      const r = useRecovery.checked;
      recoveryField.hidden = !r;
      recovery.disabled = !r;
      recovery.required = r;
      code.disabled = r;
      code.required = !r;
      code.closest("label").hidden = r;
      (r ? recovery : code).focus();
    });
    const form = h(
      "form",
      { class: "stack", id: "mfa-form" },
      h("p", {}, "Enter the 6-digit code from your authenticator app."),
      field("Authentication code", code),
      h("label", { class: "inline" }, useRecovery, " Use a recovery code instead"),
      recoveryField,
      h("button", { type: "submit" }, "Verify"),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      message.textContent = "";
      try {
        await loginMfa(mfaToken, useRecovery.checked ? { recoveryCode: recovery.value.trim() } : { code: code.value.replace(/\s/g, "") });
        finish();
      } catch (err) {
        // The challenge is spent by any attempt: start again from the password.
        fail(err);
        message.textContent += " Log in again to get a new code prompt.";
        setTimeout(passwordStep, 0);
      }
    });
    show("Two-factor authentication", form);
    code.focus();
  }

  function passwordChange() {
    const current = h("input", { name: "current_password", type: "password", autocomplete: "current-password", required: true });
    const fresh = h("input", { name: "new_password", type: "password", autocomplete: "new-password", required: true, minlength: "12" });
    const again = h("input", { name: "again", type: "password", autocomplete: "new-password", required: true, minlength: "12" });
    const form = h(
      "form",
      { class: "stack", id: "password-form" },
      h("p", {}, "An administrator reset your password. Choose a new one before you continue: at least 12 characters, not a common password."),
      field("One-time password", current),
      field("New password", fresh),
      field("New password again", again),
      h("div", { class: "row" }, h("button", { type: "submit" }, "Change password"), h("button", { type: "button", class: "secondary", onclick: async () => { await logout(); location.hash = "#/login"; passwordStep(); } }, "Log out")),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      message.textContent = "";
      if (fresh.value !== again.value) {
        message.textContent = "The new passwords differ.";
        return;
      }
      try {
        await call("POST", "/api/auth/password", { body: { current_password: current.value, new_password: fresh.value }, noRedirect: true });
        // The old access token carries the pending step: log in again.
        await logout();
        message.textContent = "";
        passwordStep();
        message.textContent = "Password changed. Log in with the new password.";
      } catch (err) {
        fail(err);
      }
    });
    show("Choose a new password", form);
    current.focus();
  }

  function enrolment() {
    const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
    const start = h(
      "form",
      { class: "stack", id: "enrol-form" },
      h("p", {}, "Your role requires two-factor authentication. Confirm your password to set up an authenticator app (any TOTP app)."),
      field("Password", password),
      h("button", { type: "submit" }, "Set up"),
    );
    start.addEventListener("submit", async (e) => {
      e.preventDefault();
      message.textContent = "";
      try {
        const enrolled = await call("POST", "/api/auth/mfa/enroll", { body: { password: password.value }, noRedirect: true });
        confirmStep(enrolled);
      } catch (err) {
        fail(err);
      }
    });
    show("Set up two-factor authentication", start);
    password.focus();
  }

  function confirmStep(enrolled) {
    const code = h("input", { name: "code", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9 ]{6,8}", required: true });
    const form = h(
      "form",
      { class: "stack", id: "confirm-form" },
      h("p", {}, "Scan the code with your authenticator app, or enter the secret by hand, then enter the code it shows."),
      h("img", { src: `data:image/svg+xml;base64,${btoa(enrolled.qr_svg)}`, alt: "QR code of the authenticator secret", width: "200", height: "200" }),
      h("p", {}, "Secret: ", h("code", { id: "mfa-secret" }, enrolled.secret)),
      field("Code from the app", code),
      h("button", { type: "submit" }, "Turn on 2FA"),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      message.textContent = "";
      try {
        const { recovery_codes: codes } = await call("POST", "/api/auth/mfa/confirm", { body: { code: code.value.replace(/\s/g, "") }, noRedirect: true });
        const go = h("button", { type: "button", id: "recovery-saved" }, "I have saved them: continue");
        go.addEventListener("click", async () => {
          // New tokens without the pending step.
          await refresh();
          await loadMe();
          done(next);
        });
        show(
          "Recovery codes",
          h("div", { class: "stack" }, h("p", {}, "2FA is on. Each of these codes logs you in once if you lose the authenticator. They are shown only now: store them safely."), h("ul", { class: "codes", id: "recovery-codes" }, codes.map((c) => h("li", {}, h("code", {}, c)))), go),
        );
        go.focus();
      } catch (err) {
        fail(err);
      }
    });
    show("Set up two-factor authentication", form);
    code.focus();
  }

  async function finish() {
    const me = await loadMe();
    if (me?.user?.must_change_password || pendingStep() === "password_change") passwordChange();
    else if (pendingStep() === "mfa_enrolment") enrolment();
    else done(next);
  }

  function show(title, form) {
    box.replaceChildren(h("h1", { id: "page-title", tabindex: "-1" }, title), message, form);
  }

  if (pending === "mfa_enrolment") enrolment();
  else if (pending) passwordChange();
  else passwordStep();
  return box;
}
