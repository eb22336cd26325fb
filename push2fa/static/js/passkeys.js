// Passkeys: run the WebAuthn ceremony the server prepared, then post the answer as an
// ordinary form (with its CSRF token), so the server decides and redirects as for any form.
// Forms: #passkey-add-form (register), #passkey-second-factor (after the password),
// #passkey-sign-in (no password; also conditional UI on the username field).
(function () {
  "use strict";
  if (window.__push2faPasskeys) { return; }
  window.__push2faPasskeys = true;

  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var raw = atob(base64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // Browsers without the JSON helpers (older Safari) get the same conversion by hand.
  function creationOptions(json) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    var options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.user = Object.assign({}, json.user, { id: toBytes(json.user.id) });
    options.excludeCredentials = (json.excludeCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: toBytes(c.id) });
    });
    return options;
  }

  function requestOptions(json) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    var options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.allowCredentials = (json.allowCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: toBytes(c.id) });
    });
    return options;
  }

  function answerJSON(credential) {
    if (typeof credential.toJSON === "function") { return credential.toJSON(); }
    var response = {};
    ["clientDataJSON", "attestationObject", "authenticatorData", "signature", "userHandle"]
      .forEach(function (name) {
        if (credential.response[name]) { response[name] = toText(credential.response[name]); }
      });
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: response,
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || null,
    };
  }

  function showError(form, message) {
    var box = form.querySelector("[data-passkey-error]");
    if (box) { box.textContent = message; box.hidden = !message; }
  }

  // Asks the server for the options; extra fields (the password) come from the form.
  function fetchOptions(form, extra) {
    var body = new FormData();
    body.append("csrf_token", form.querySelector("input[name=csrf_token]").value);
    (extra || []).forEach(function (name) {
      var input = form.querySelector("input[name=" + name + "]");
      if (input) { body.append(name, input.value); }
    });
    return fetch(form.dataset.optionsUrl, {
      method: "POST", body: body, credentials: "same-origin",
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok || !data.publicKey) {
          throw new Error(data.error || "The server could not start the passkey request.");
        }
        return data;
      });
    });
  }

  function submitAnswer(form, ceremony, credential) {
    form.querySelector("input[name=ceremony]").value = ceremony;
    form.querySelector("input[name=credential]").value = JSON.stringify(answerJSON(credential));
    var trust = document.getElementById("trust");
    var trustField = form.querySelector("input[name=trust]");
    if (trust && trustField) { trustField.value = trust.checked ? "y" : ""; }
    HTMLFormElement.prototype.submit.call(form);
  }

  function explain(error) {
    if (error && error.name === "NotAllowedError") {
      return "The passkey request was cancelled or timed out. Try again.";
    }
    if (error && error.name === "InvalidStateError") {
      return "This passkey is already registered.";
    }
    return (error && error.message) || "The passkey could not be used.";
  }

  // --- registration ---
  var addForm = document.getElementById("passkey-add-form");
  if (addForm) {
    addForm.addEventListener("submit", function (event) {
      event.preventDefault();
      showError(addForm, "");
      fetchOptions(addForm, ["password"]).then(function (data) {
        return navigator.credentials.create({ publicKey: creationOptions(data.publicKey) })
          .then(function (credential) { submitAnswer(addForm, data.ceremony, credential); });
      }).catch(function (error) { showError(addForm, explain(error)); });
    });
  }

  // --- second factor and sign-in (a button, and for sign-in the autofill too) ---
  var conditional = null;

  function assert(form, mediation) {
    return fetchOptions(form).then(function (data) {
      var request = { publicKey: requestOptions(data.publicKey) };
      if (mediation) {
        conditional = new AbortController();
        request.mediation = mediation;
        request.signal = conditional.signal;
      }
      return navigator.credentials.get(request).then(function (credential) {
        if (credential) { submitAnswer(form, data.ceremony, credential); }
      });
    });
  }

  ["passkey-second-factor", "passkey-sign-in"].forEach(function (id) {
    var form = document.getElementById(id);
    if (!form) { return; }
    var button = form.querySelector("[data-passkey-start]");
    if (!window.PublicKeyCredential) {
      showError(form, "This browser does not support passkeys.");
      if (button) { button.disabled = true; }
      return;
    }
    button.addEventListener("click", function () {
      showError(form, "");
      if (conditional) { conditional.abort(); conditional = null; }
      assert(form, null).catch(function (error) { showError(form, explain(error)); });
    });
    // Served disabled: a tap before this script ran would do nothing at all.
    button.disabled = false;
  });

  var signIn = document.getElementById("passkey-sign-in");
  var login = document.querySelector("input[name=login]");
  if (signIn && login && window.PublicKeyCredential &&
      PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
      if (!available) { return; }
      login.setAttribute("autocomplete", "username webauthn");
      assert(signIn, "conditional").catch(function () { /* autofill not chosen: quiet */ });
    });
  }
})();
