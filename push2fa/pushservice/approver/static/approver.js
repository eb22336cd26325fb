// The push2fa Approver: enrol this phone with a passkey (from the app's enrolment link, or
// by proving the e-mail an app registered), list sign-in requests, answer each one with a
// WebAuthn assertion over the SHA-256 of a canonical decision record, and show an
// account's 7-digit code after a passkey check.
"use strict";

(() => {
  const root = document.getElementById("approver");
  const api = root.dataset.api;
  const STORE_KEY = "push2fa.approver.credentials";
  const dark = window.matchMedia("(prefers-color-scheme: dark)");
  const $ = (id) => document.getElementById(id);

  // --- colour mode follows the phone -------------------------------------------------
  const applyTheme = () =>
    document.documentElement.setAttribute("data-bs-theme", dark.matches ? "dark" : "light");
  applyTheme();
  dark.addEventListener("change", applyTheme);

  // --- small helpers -----------------------------------------------------------------
  const b64url = (buffer) => {
    const bytes = new Uint8Array(buffer);
    let text = "";
    for (const b of bytes) text += String.fromCharCode(b);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  const fromB64url = (text) => {
    const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)).buffer;
  };

  // Browsers without the JSON helpers (older Safari) get the same conversion by hand.
  const creationOptions = (json) => {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    return {
      ...json,
      challenge: fromB64url(json.challenge),
      user: { ...json.user, id: fromB64url(json.user.id) },
      excludeCredentials: (json.excludeCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) })),
    };
  };
  const requestOptions = (json) => {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    return {
      ...json,
      challenge: fromB64url(json.challenge),
      allowCredentials: (json.allowCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) })),
    };
  };
  const credentialJSON = (credential) => {
    if (credential.toJSON) return credential.toJSON();
    const r = credential.response;
    const response = { clientDataJSON: b64url(r.clientDataJSON) };
    if (r.attestationObject) response.attestationObject = b64url(r.attestationObject);
    if (r.authenticatorData) response.authenticatorData = b64url(r.authenticatorData);
    if (r.signature) response.signature = b64url(r.signature);
    if (r.userHandle) response.userHandle = b64url(r.userHandle);
    return { id: credential.id, rawId: b64url(credential.rawId), type: credential.type, response,
      clientExtensionResults: credential.getClientExtensionResults() };
  };

  const post = async (path, body) => {
    const response = await fetch(api + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    let data = {};
    try {
      data = await response.json();
    } catch (_) {
      data = {};
    }
    if (!response.ok) throw new Error(data.error || `The server answered ${response.status}.`);
    return data;
  };

  const say = (text, kind = "info") => {
    const box = document.createElement("div");
    box.className = `alert alert-${kind}`;
    box.setAttribute("role", kind === "danger" ? "alert" : "status");
    box.textContent = text;
    $("messages").replaceChildren(box);
  };

  const saved = () => {
    try {
      return JSON.parse(localStorage.getItem(STORE_KEY) || "[]");
    } catch (_) {
      return [];
    }
  };
  const save = (entry) => {
    const list = saved().filter((e) => e.authy_id !== entry.authy_id);
    list.push(entry);
    localStorage.setItem(STORE_KEY, JSON.stringify(list));
  };
  const credentialFor = (authyId) => (saved().find((e) => e.authy_id === authyId) || {}).credential;

  // --- service worker and push -------------------------------------------------------
  let registration = null;
  const registerWorker = async () => {
    if (!("serviceWorker" in navigator)) return null;
    try {
      registration = await navigator.serviceWorker.register(root.dataset.sw, { scope: root.dataset.scope });
    } catch (_) {
      registration = null;
    }
    return registration;
  };
  // The request a notification was tapped for: brought into view, ready for the number.
  const spotlight = (uuid) => {
    const entry = cards.get(uuid);
    if (!entry) return;
    entry.element.classList.add("is-new");
    entry.element.scrollIntoView({ block: "start" });
    const input = entry.element.querySelector(".number-input");
    (entry.request.needs_number ? input : entry.element.querySelector(".approve-button")).focus();
  };
  navigator.serviceWorker?.addEventListener("message", async (event) => {
    await refresh();
    if (event.data && event.data.type === "open") spotlight(event.data.request);
  });

  // A subscription where the browser can give one; none is fine (Socket.IO and fetch on
  // open still work), so every failure here is silent.
  const subscribe = async () => {
    try {
      if (!registration || !("PushManager" in window) || !root.dataset.pushKey) return null;
      const permission = await Notification.requestPermission();
      if (permission !== "granted") return null;
      const existing = await registration.pushManager.getSubscription();
      const subscription = existing || await registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: fromB64url(root.dataset.pushKey),
      });
      return subscription.toJSON();
    } catch (_) {
      return null;
    }
  };

  // Browsers rotate subscriptions and pushsubscriptionchange is unreliable: on each open,
  // tell the server the current one (only where permission was already given).
  const refreshSubscription = async () => {
    try {
      if (!registration || !("PushManager" in window) || Notification.permission !== "granted") return;
      const subscription = await registration.pushManager.getSubscription();
      if (!subscription) return;
      for (const entry of saved()) {
        await post("/subscription", { credential: entry.credential, subscription: subscription.toJSON() });
      }
    } catch (_) {
      // a phone without push still works: Socket.IO and fetch on open
    }
  };

  // --- enrolment ---------------------------------------------------------------------
  // A grant is what lets this phone join an account: { token } from the app's enrolment
  // link, or { claim, account } won with a code e-mailed to the address an app registered.
  let enrolment = null; // { grant, options } fetched before the tap, so the tap can go straight to the passkey

  const tokenFrom = (text) => {
    const value = (text || "").trim();
    if (!value) return null;
    const authy = value.match(/^authy:\/\/account\?(.*)$/i);
    if (authy) return new URLSearchParams(authy[1]).get("token");
    const hash = value.indexOf("#");
    if (hash >= 0) return new URLSearchParams(value.slice(hash + 1)).get("t") || new URLSearchParams(value.slice(hash + 1)).get("token");
    try {
      const url = new URL(value);
      return url.searchParams.get("token") || url.searchParams.get("t");
    } catch (_) {
      return value;
    }
  };

  const prepareEnrolment = async (grant) => {
    enrolment = null;
    try {
      const options = await post("/enrol/options", grant);
      enrolment = { grant, options };
      $("enrol").hidden = false;
      say("Tap “Add this phone” to confirm with your screen lock.", "info");
      $("enrol-button").focus();
    } catch (error) {
      $("enrol").hidden = true;
      say(error.message, "danger");
    }
  };

  const enrol = async () => {
    if (!enrolment) return;
    const button = $("enrol-button");
    button.disabled = true;
    try {
      const credential = await navigator.credentials.create({ publicKey: creationOptions(enrolment.options.publicKey) });
      const subscription = await subscribe();
      const result = await post("/enrol", {
        ...enrolment.grant,
        ceremony: enrolment.options.ceremony,
        credential: credentialJSON(credential),
        subscription,
        name: navigator.userAgentData?.platform || "Phone",
      });
      save({ credential: result.credential, authy_id: result.authy_id, account: result.account });
      enrolment = null;
      $("enrol").hidden = true;
      resetEmailWay();
      say(result.push ? "This phone is added. Requests arrive as notifications."
        : "This phone is added. Keep the Approver open to see requests (no notifications on this browser).", "success");
      connect();
      await refresh();
    } catch (error) {
      say(error.name === "NotAllowedError" ? "The screen lock was not confirmed. Try again." : error.message, "danger");
    } finally {
      button.disabled = false;
    }
  };
  $("enrol-button").addEventListener("click", enrol);
  $("link-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = tokenFrom($("link-input").value);
    $("link-input").value = "";
    if (token) prepareEnrolment({ token });
  });

  // --- "An app registered my e-mail": prove the address with a code sent to it --------
  let emailAddress = null;
  const resetEmailWay = () => {
    if (!$("email-way")) return;
    emailAddress = null;
    $("email-way").hidden = true;
    $("email-start").setAttribute("aria-expanded", "false");
    $("email-code-form").hidden = true;
    $("email-accounts").hidden = true;
    $("email-account-list").replaceChildren();
    $("email-input").value = "";
    $("email-code-input").value = "";
  };
  const chooseAccount = (claim, accounts) => {
    const list = $("email-account-list");
    list.replaceChildren();
    for (const account of accounts) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "btn btn-outline-primary text-start";
      const registered = new Date(account.created_at).toLocaleDateString();
      button.textContent = account.phone
        ? `Phone number ending ${account.phone}, registered ${registered}`
        : `Registered ${registered}`;
      button.addEventListener("click", () => {
        $("email-accounts").hidden = true;
        prepareEnrolment({ claim, account: account.id });
      });
      list.append(button);
    }
    $("email-accounts").hidden = false;
    list.querySelector("button")?.focus();
  };
  if ($("email-way")) {
    $("email-start").addEventListener("click", () => {
      const way = $("email-way");
      way.hidden = !way.hidden;
      $("email-start").setAttribute("aria-expanded", String(!way.hidden));
      if (!way.hidden) $("email-input").focus();
    });
    $("email-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = event.submitter || $("email-form").querySelector("button");
      button.disabled = true;
      try {
        const email = $("email-input").value.trim();
        const result = await post("/email/code", { email });
        emailAddress = email;
        say(result.message, "info");
        $("email-code-form").hidden = false;
        $("email-code-input").focus();
      } catch (error) {
        say(error.message, "danger");
      } finally {
        button.disabled = false;
      }
    });
    $("email-code-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = event.submitter || $("email-code-form").querySelector("button");
      button.disabled = true;
      try {
        const result = await post("/email/verify", { email: emailAddress, code: $("email-code-input").value });
        $("email-code-form").hidden = true;
        if (result.accounts.length === 1) await prepareEnrolment({ claim: result.claim, account: result.accounts[0].id });
        else chooseAccount(result.claim, result.accounts);
      } catch (error) {
        say(error.message, "danger");
      } finally {
        button.disabled = false;
      }
    });
  }

  // --- accounts and their 7-digit codes ----------------------------------------------
  const showCode = async (entry, element) => {
    const button = element.querySelector(".code-button");
    button.disabled = true;
    try {
      const options = await post("/code/options", { credential: credentialFor(entry.authy_id) });
      const assertion = await navigator.credentials.get({ publicKey: requestOptions(options.publicKey) });
      const result = await post("/code", { ceremony: options.ceremony, assertion: credentialJSON(assertion) });
      const box = element.querySelector(".account-code");
      element.querySelector(".code-digits").textContent = `${result.code.slice(0, 3)} ${result.code.slice(3)}`;
      box.hidden = false;
      let left = result.seconds_left;
      const count = () => {
        element.querySelector(".code-left").textContent = `${left} s left`;
        if (left-- <= 0) {
          clearInterval(timer);
          box.hidden = true;
        }
      };
      const timer = setInterval(count, 1000);
      count();
    } catch (error) {
      say(error.name === "NotAllowedError" ? "The screen lock was not confirmed." : error.message, "danger");
    } finally {
      button.disabled = false;
    }
  };
  const renderAccounts = () => {
    const list = $("account-list");
    const entries = saved();
    if (list.childElementCount === entries.length) return;
    list.replaceChildren();
    for (const entry of entries) {
      const element = $("account-template").content.firstElementChild.cloneNode(true);
      element.querySelector(".account-name").textContent = entry.account || "Account";
      element.querySelector(".code-button").addEventListener("click", () => showCode(entry, element));
      list.append(element);
    }
    $("accounts").hidden = entries.length === 0;
  };

  // --- requests ----------------------------------------------------------------------
  const cards = new Map(); // uuid -> { element, request, options }

  const canonicalRecord = (options, decision, number) =>
    // Keys in sorted order, no spaces: the very bytes the server rebuilds.
    JSON.stringify({
      decision,
      exp: options.exp,
      nonce: options.nonce,
      number: decision === "approve" ? number : null,
      purpose: "push2fa-approver-decision",
      request: options.request,
      v: 1,
    });

  const fetchOptions = async (entry) => {
    const credential = credentialFor(entry.request.authy_id);
    if (!credential) throw new Error("This phone has no passkey for this account. Add it again.");
    entry.options = await post(`/requests/${encodeURIComponent(entry.request.uuid)}/options`, { credential });
    return entry.options;
  };

  const answer = async (entry, decision) => {
    const element = entry.element;
    const typed = element.querySelector(".number-input").value.trim();
    if (decision === "approve" && entry.request.needs_number && !/^[0-9]{1,8}$/.test(typed)) {
      say("Type the number shown on the login screen first.", "warning");
      element.querySelector(".number-input").focus();
      return;
    }
    element.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    try {
      const options = entry.options || await fetchOptions(entry);
      entry.options = null; // one answer per nonce
      const record = canonicalRecord(options, decision, entry.request.needs_number ? typed : null);
      const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(record));
      const publicKey = requestOptions({ ...options.publicKey, challenge: b64url(digest) });
      const assertion = await navigator.credentials.get({ publicKey });
      const result = await post(`/requests/${encodeURIComponent(entry.request.uuid)}/decision`, {
        ceremony: options.ceremony,
        decision,
        number: decision === "approve" && entry.request.needs_number ? typed : null,
        assertion: credentialJSON(assertion),
      });
      say(result.status === "approved" ? "Approved. Your login screen continues."
        : decision === "report" ? "Reported. The sign-in was refused and the site was told."
          : "Denied.", result.status === "approved" ? "success" : "secondary");
      removeCard(entry.request.uuid);
    } catch (error) {
      say(error.name === "NotAllowedError" ? "The screen lock was not confirmed. Nothing was sent."
        : error.message, "danger");
      element.querySelectorAll("button").forEach((b) => { b.disabled = false; });
      fetchOptions(entry).catch(() => {});
    }
  };

  const timeLeft = (entry) => {
    if (!entry.request.expires_at) return "No time limit";
    const seconds = Math.round((new Date(entry.request.expires_at) - Date.now()) / 1000);
    if (seconds <= 0) return null;
    return seconds >= 60 ? `${Math.floor(seconds / 60)} min ${seconds % 60} s left` : `${seconds} s left`;
  };

  const addCard = (request) => {
    const element = $("request-template").content.firstElementChild.cloneNode(true);
    element.dataset.uuid = request.uuid;
    element.querySelector(".request-message").textContent = request.message;
    const details = element.querySelector(".request-details");
    const rows = [["Site", root.dataset.appName]];
    // The app names the account in its details ("Username"); the push service's own id
    // for it means nothing to a person, so it is shown only when the app names none.
    if (request.account && !(request.details || {}).Username) rows.push(["Account", request.account]);
    for (const [key, value] of Object.entries(request.details || {})) rows.push([key, value]);
    rows.push(["Requested", new Date(request.created_at).toLocaleString()]);
    for (const [key, value] of rows) {
      const dt = document.createElement("dt");
      dt.className = "col-4 text-body-secondary fw-normal";
      dt.textContent = key;
      const dd = document.createElement("dd");
      dd.className = "col-8 mb-1 text-break";
      dd.textContent = value;
      details.append(dt, dd);
    }
    element.querySelector(".number-group").hidden = !request.needs_number;
    const inputId = `number-${request.uuid}`;
    element.querySelector(".number-input").id = inputId;
    element.querySelector(".number-label").htmlFor = inputId;
    const entry = { element, request, options: null };
    element.querySelector(".approve-button").addEventListener("click", () => answer(entry, "approve"));
    element.querySelector(".deny-button").addEventListener("click", () => answer(entry, "deny"));
    element.querySelector(".report-button").addEventListener("click", () => answer(entry, "report"));
    cards.set(request.uuid, entry);
    $("requests").append(element);
    tick();
    fetchOptions(entry).catch(() => {});
  };

  const removeCard = (uuid) => {
    const entry = cards.get(uuid);
    if (!entry) return;
    entry.element.remove();
    cards.delete(uuid);
    $("no-requests").hidden = cards.size > 0;
  };

  const tick = () => {
    for (const [uuid, entry] of cards) {
      const left = timeLeft(entry);
      if (left === null) removeCard(uuid);
      else entry.element.querySelector(".time-left").textContent = left;
    }
    $("no-requests").hidden = cards.size > 0;
  };
  setInterval(tick, 1000);

  // One fetch at a time; a refresh asked for during a fetch runs again after it, so an
  // event that arrives while an older answer is in flight is never lost.
  let refreshing = null;
  let again = false;
  const refresh = async () => {
    if (refreshing) {
      again = true;
      return refreshing;
    }
    refreshing = (async () => {
      do {
        again = false;
        await refreshOnce();
      } while (again);
    })().finally(() => {
      refreshing = null;
    });
    return refreshing;
  };
  const refreshOnce = async () => {
    let data;
    try {
      const response = await fetch(`${api}/requests`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return;
      data = await response.json();
    } catch (_) {
      return; // offline: the next focus, reconnect or event tries again
    }
    const live = new Set(data.requests.map((r) => r.uuid));
    for (const uuid of [...cards.keys()]) if (!live.has(uuid)) removeCard(uuid);
    for (const request of data.requests) if (!cards.has(request.uuid)) addCard(request);
    const count = saved().length;
    $("accounts-line").textContent = count ? `${count} account${count > 1 ? "s" : ""} on this phone.` : "No account on this phone yet.";
    renderAccounts();
    tick();
  };

  // --- live delivery -----------------------------------------------------------------
  let socket = null;
  const connect = () => {
    if (socket || typeof io !== "function" || !saved().length) return;
    socket = io({ path: root.dataset.socketioPath, transports: ["websocket"] });
    const badge = $("connection");
    socket.on("connect", () => {
      badge.textContent = "live";
      badge.className = "badge text-bg-success";
      refresh();
    });
    socket.on("disconnect", () => {
      badge.textContent = "offline";
      badge.className = "badge text-bg-secondary";
    });
    socket.on("new_request", () => refresh());
    socket.on("request_decided", (event) => removeCard(event.uuid));
    socket.on("request_expired", (event) => removeCard(event.uuid));
  };

  window.addEventListener("focus", () => refresh());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refresh();
  });

  // --- start -------------------------------------------------------------------------
  const start = async () => {
    await registerWorker();
    const fragment = new URLSearchParams(location.hash.slice(1));
    const token = fragment.get("t") || fragment.get("token");
    if (token) {
      history.replaceState(null, "", location.pathname); // the token leaves the address bar
      await prepareEnrolment({ token });
    }
    connect();
    renderAccounts();
    await refresh();
    const tapped = new URLSearchParams(location.search).get("request");
    if (tapped) spotlight(tapped);
    refreshSubscription();
    root.dataset.ready = "true";
  };
  start();
})();
