// push2fa's push service phone page: live requests over Socket.IO, answers via fetch,
// local countdowns. The page works without this file (plain forms, reload to refresh).
(function () {
  "use strict";

  const root = document.getElementById("phone");
  if (!root) {
    return;
  }
  const csrfToken = root.dataset.csrfToken;
  const requestsUrl = root.dataset.requestsUrl;
  const appName = root.dataset.appName;
  const requestsBox = document.getElementById("requests");
  const emptyNote = document.getElementById("no-requests");
  const notices = document.getElementById("notices");
  const connection = document.getElementById("connection");
  const codeDeadlines = new Map(); // authy_id -> ms timestamp when the shown code changes

  function cardFor(uuid) {
    return requestsBox.querySelector('[data-uuid="' + CSS.escape(uuid) + '"]');
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function hiddenInput(name, value) {
    const input = element("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    return input;
  }

  // One small form per answer, as the server renders them: each posts a status and,
  // for a picked number or a report, a reason.
  function decisionForm(request, className, fields) {
    const form = element("form", "decision-form " + className);
    form.method = "post";
    form.action = requestsUrl + encodeURIComponent(request.uuid);
    form.append(hiddenInput("csrf_token", csrfToken));
    for (const [name, value] of Object.entries(fields)) {
      form.append(hiddenInput(name, value));
    }
    return form;
  }

  function actionButton(action, label, className) {
    const button = element("button", "btn flex-fill " + className, label);
    button.type = "submit";
    button.dataset.action = action;
    return button;
  }

  function pickForm(request) {
    const form = decisionForm(request, "mb-3", { status: "approved" });
    const prompt = element("p", "fw-semibold mb-2", "Pick the number shown on your login screen");
    prompt.id = "pick-" + request.uuid;
    const group = element("div", "d-flex gap-2");
    group.setAttribute("role", "group");
    group.setAttribute("aria-labelledby", prompt.id);
    for (const choice of request.choices) {
      const button = actionButton("pick", choice, "btn-outline-primary btn-lg pick-button");
      button.name = "reason";
      button.value = choice;
      button.dataset.code = choice;
      group.append(button);
    }
    form.append(prompt, group);
    return form;
  }

  function answerRow(request) {
    const row = element("div", "d-flex flex-wrap gap-2");
    const choices = request.choices || [];
    if (!choices.length) {
      const approve = decisionForm(request, "d-flex flex-fill", { status: "approved" });
      approve.append(actionButton("approve", "Approve", "btn-success"));
      row.append(approve);
    }
    const deny = decisionForm(request, "d-flex flex-fill", { status: "denied" });
    deny.append(actionButton("deny", "Deny", "btn-outline-danger"));
    const report = decisionForm(
      request, "d-flex flex-fill", { status: "denied", reason: "reported" });
    const reportButton = actionButton(
      "report", "Report: this wasn't me", "btn-outline-secondary");
    reportButton.setAttribute("aria-describedby", "report-help-" + request.uuid);
    report.append(reportButton);
    row.append(deny, report);
    return row;
  }

  function buildCard(request) {
    const card = element("article", "card mb-3 request-card is-new");
    card.dataset.uuid = request.uuid;
    card.dataset.authyId = String(request.authy_id);
    card.dataset.expiresAt = request.expires_at || "";
    card.setAttribute("aria-labelledby", "message-" + request.uuid);

    const body = element("div", "card-body");
    const title = element("h3", "h6 card-title", request.message);
    title.id = "message-" + request.uuid;
    body.append(title);

    const details = Object.entries(request.details || {});
    if (details.length) {
      const list = element("dl", "row small mb-2");
      for (const [key, value] of details) {
        list.append(element("dt", "col-5 text-truncate", key));
        list.append(element("dd", "col-7 mb-1", value));
      }
      body.append(list);
    }

    const timing = element("p", "small text-body-secondary mb-2");
    timing.append(element("span", "time-left", request.expires_at ? "" : "Never expires"));
    body.append(timing);

    if ((request.choices || []).length) {
      body.append(pickForm(request));
    }
    body.append(answerRow(request));
    const help = element(
      "p", "form-text mb-0",
      "Report denies the request and tells " + appName +
      " that someone else tried to log in.");
    help.id = "report-help-" + request.uuid;
    body.append(help);
    card.append(body);
    return card;
  }

  function refreshEmpty() {
    emptyNote.hidden = requestsBox.children.length > 0;
  }

  function notify(text, kind) {
    const alert = element("div", "alert alert-" + (kind || "success"), text);
    alert.setAttribute("role", kind === "danger" ? "alert" : "status");
    notices.replaceChildren(alert);
  }

  function addRequest(request) {
    if (!cardFor(request.uuid)) {
      requestsBox.append(buildCard(request));
      refreshEmpty();
      tick();
    }
  }

  function removeRequest(uuid) {
    const card = cardFor(uuid);
    if (card) {
      card.remove();
      refreshEmpty();
    }
  }

  function setCode(update) {
    const item = document.querySelector(
      '#accounts [data-authy-id="' + CSS.escape(String(update.authy_id)) + '"]');
    if (!item) {
      return;
    }
    item.querySelector(".totp-code").textContent = update.code;
    codeDeadlines.set(String(update.authy_id), Date.now() + update.seconds_left * 1000);
    tick();
  }

  function describeLeft(ms) {
    const seconds = Math.ceil(ms / 1000);
    if (seconds >= 3600) {
      return "Expires in " + Math.floor(seconds / 3600) + " h " +
        Math.floor((seconds % 3600) / 60) + " min";
    }
    if (seconds >= 60) {
      return "Expires in " + Math.floor(seconds / 60) + " min " + (seconds % 60) + " s";
    }
    return "Expires in " + seconds + " s";
  }

  function tick() {
    const now = Date.now();
    for (const card of requestsBox.querySelectorAll(".request-card")) {
      const expiresAt = card.dataset.expiresAt;
      if (!expiresAt) {
        continue;
      }
      const left = Date.parse(expiresAt) - now;
      const label = card.querySelector(".time-left");
      if (left > 0) {
        label.textContent = describeLeft(left);
      } else {
        label.textContent = "Expired";
        for (const button of card.querySelectorAll("button")) {
          button.disabled = true;
        }
      }
    }
    for (const [authyId, deadline] of codeDeadlines) {
      const item = document.querySelector(
        '#accounts [data-authy-id="' + CSS.escape(authyId) + '"]');
      if (item) {
        const seconds = Math.max(0, Math.ceil((deadline - now) / 1000));
        item.querySelector(".totp-seconds").textContent = String(seconds);
      }
    }
  }

  for (const output of document.querySelectorAll("#accounts .totp-code")) {
    const authyId = output.closest("[data-authy-id]").dataset.authyId;
    codeDeadlines.set(authyId, Date.now() + Number(output.dataset.secondsLeft) * 1000);
  }

  async function readJson(response) {
    try {
      return await response.json();
    } catch (error) {
      return {};
    }
  }

  document.addEventListener("submit", async function (event) {
    const form = event.target;
    if (!form.classList.contains("decision-form")) {
      return;
    }
    event.preventDefault();
    const data = new FormData(form);
    if (event.submitter && event.submitter.name) {
      data.set(event.submitter.name, event.submitter.value);
    }
    const card = form.closest("[data-uuid]");
    const uuid = card.dataset.uuid;
    const buttons = card.querySelectorAll("button");
    buttons.forEach(function (button) { button.disabled = true; });
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: data,
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const body = await readJson(response);
      if (response.ok || response.status === 404 || response.status === 409) {
        removeRequest(uuid);
        notify(body.message || "Done.", response.ok ? "success" : "warning");
        return;
      }
      notify(body.message || "That did not work. Reload the page and try again.", "danger");
    } catch (error) {
      notify("Network error: the answer was not sent. Try again.", "danger");
    }
    buttons.forEach(function (button) { button.disabled = false; });
  });

  function setConnection(online) {
    connection.textContent = online ? "live" : "offline";
    connection.className = "badge " + (online ? "text-bg-success" : "text-bg-secondary");
  }

  function reconcile(state) {
    const live = new Set(state.requests.map(function (r) { return r.uuid; }));
    for (const card of Array.from(requestsBox.querySelectorAll(".request-card"))) {
      if (!live.has(card.dataset.uuid)) {
        card.remove();
      }
    }
    state.requests.forEach(addRequest);
    state.codes.forEach(setCode);
    refreshEmpty();
  }

  if (root.dataset.live === "true" && typeof window.io === "function") {
    const socket = window.io({ path: root.dataset.socketioPath });
    socket.on("connect", function () {
      setConnection(true);
      socket.emit("sync", null, reconcile);
    });
    socket.on("disconnect", function () { setConnection(false); });
    socket.on("new_request", function (request) {
      addRequest(request);
      const pick = (request.choices || []).length ?
        " Pick the number shown on your login screen." : "";
      notify("New login request: " + request.message + pick, "info");
    });
    socket.on("request_decided", function (event) { removeRequest(event.uuid); });
    socket.on("request_expired", function (event) { removeRequest(event.uuid); });
    socket.on("request_withdrawn", function (event) { removeRequest(event.uuid); });
    socket.on("totp", setCode);
  }

  tick();
  setInterval(tick, 1000);
})();
