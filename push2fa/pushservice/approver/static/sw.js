// The Approver's service worker: an offline page, and a notification for every push.
// A push is only a wake-up hint ({v, request}); the page fetches and signs everything.
// Every push shows a notification inside waitUntil: browsers revoke subscriptions that
// receive pushes without showing one.
"use strict";

const SCOPE = new URL(self.registration.scope).pathname;
const OFFLINE = `${SCOPE}offline`;
const CACHE = "push2fa-approver-v1";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.add(OFFLINE)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("fetch", (event) => {
  if (event.request.mode !== "navigate") return;
  event.respondWith(fetch(event.request).catch(() => caches.match(OFFLINE)));
});

const requestIdOf = (event) => {
  try {
    const data = event.data ? event.data.json() : {};
    return typeof data.request === "string" ? data.request.slice(0, 64) : "";
  } catch (_) {
    return "";
  }
};

self.addEventListener("push", (event) => {
  const requestId = requestIdOf(event);
  const shown = self.registration.showNotification("Sign-in request", {
    body: "Someone is signing in to your account. Open to approve or deny.",
    tag: requestId || "push2fa-approver",
    requireInteraction: true,
    icon: `${SCOPE}assets/icon-192.png`,
    data: { request: requestId },
  });
  const told = self.clients.matchAll({ type: "window", includeUncontrolled: true })
    .then((clients) => clients.forEach((client) => client.postMessage({ type: "push", request: requestId })));
  event.waitUntil(Promise.all([shown, told]));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const requestId = (event.notification.data || {}).request || "";
  const target = `${SCOPE}${requestId ? `?request=${encodeURIComponent(requestId)}` : ""}`;
  event.waitUntil((async () => {
    const clients = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of clients) {
      if (new URL(client.url).pathname.startsWith(SCOPE)) {
        await client.focus();
        client.postMessage({ type: "open", request: requestId });
        return;
      }
    }
    await self.clients.openWindow(target);
  })());
});
