// The phone view's service worker: the page shell (the task list, the case pages seen, their CSS and
// script) is kept so the view opens without a signal; the outbox itself lives in the page
// (IndexedDB, field.js). Pages come from the network first, the cache only when there is no answer.
"use strict";
const CACHE = "yiwang-field-v1";
const SHELL = ["/console/field", "/static/field.css", "/static/field.js"];
const MAX_PAGES = 40; // case pages kept for offline reading: bounded

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => Promise.all(SHELL.map((url) => cache.add(url).catch(() => undefined))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith("yiwang-field") && n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

function shellRequest(url) {
  return url.origin === self.location.origin &&
    (url.pathname === "/console/field" || url.pathname.startsWith("/console/field/cases/") ||
     url.pathname === "/static/field.css" || url.pathname === "/static/field.js");
}

async function trim(cache) {
  const keys = await cache.keys();
  for (const old of keys.slice(0, Math.max(0, keys.length - MAX_PAGES - SHELL.length))) {
    if (!SHELL.includes(new URL(old.url).pathname)) await cache.delete(old);
  }
}

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const answer = await fetch(request);
    if (answer.ok && !answer.redirected) {
      await cache.put(request, answer.clone());
      await trim(cache);
    }
    return answer;
  } catch (error) {
    const kept = (await cache.match(request)) || (await cache.match(request, { ignoreSearch: true }));
    if (kept) return kept;
    if (request.mode === "navigate") {
      const shell = await cache.match("/console/field");
      if (shell) return shell;
    }
    throw error;
  }
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || !shellRequest(url)) return; // everything else: the network
  event.respondWith(networkFirst(event.request));
});
