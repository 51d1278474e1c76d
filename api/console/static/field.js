// The phone view's outbox: every action is first kept in IndexedDB (photos as blobs), then sent in
// order with an Idempotency-Key made when it was queued, so a tap on a weak signal is never lost and a
// retry is never applied twice. Words come from the page (#field-words); no inline script (CSP).
"use strict";
(() => {
  const MAX_ITEMS = 20, MAX_PHOTOS = 3, MAX_PHOTO_BYTES = 10 * 1024 * 1024, RETRY_MS = 15000;
  const KEPT = new Set([400, 403, 404, 409, 413, 415, 422]); // the server said no: the user decides
  const DB_NAME = "yiwang-field", STORE = "outbox";
  const words = document.getElementById("field-words").dataset;
  const csrf = () => document.querySelector("meta[name=csrf-token]").content;
  let flushing = false, flushAgain = false, signedOut = false;

  function uuid() { // crypto.randomUUID needs a secure context; getRandomValues does not
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function openDb() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "key" });
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  async function tx(mode, work) {
    const db = await openDb();
    return new Promise((resolve, reject) => {
      const t = db.transaction(STORE, mode), store = t.objectStore(STORE);
      const req = work(store);
      t.oncomplete = () => { db.close(); resolve(req && req.result); };
      t.onerror = () => { db.close(); reject(t.error); };
    });
  }
  const allItems = async () => ((await tx("readonly", (s) => s.getAll())) || []).sort((a, b) => a.created - b.created);
  const putItem = (item) => tx("readwrite", (s) => s.put(item));
  const dropItem = (key) => tx("readwrite", (s) => s.delete(key));

  function say(template, values) {
    return template.replace(/\{(\w+)\}/g, (_, k) => (k in values ? values[k] : ""));
  }
  const why = (status) => words[`err-${status}`] || words.errOther;

  async function render() {
    const box = document.getElementById("outbox"), status = document.getElementById("outbox-status");
    const failedList = document.getElementById("outbox-failed");
    const items = await allItems();
    const waiting = items.filter((i) => i.state === "pending"), failed = items.filter((i) => i.state === "failed");
    failedList.replaceChildren();
    for (const item of failed) {
      const li = document.createElement("li"), reason = document.createElement("span"), drop = document.createElement("button");
      li.dataset.key = item.key;
      li.append(`${words.failed} · ${item.label}`);
      reason.className = "why"; reason.textContent = item.message || why(item.status);
      drop.type = "button"; drop.textContent = words.discard;
      drop.addEventListener("click", async () => { await dropItem(item.key); render(); });
      li.append(reason, drop);
      failedList.append(li);
    }
    const lines = [];
    if (waiting.length) lines.push(say(words.pending, { n: waiting.length }));
    if (waiting.length && !navigator.onLine) lines.push(words.offline);
    if (waiting.length && signedOut) lines.push(words["err-401"]);
    status.textContent = lines.join(" · ");
    status.dataset.pending = String(waiting.length);
    box.hidden = !waiting.length && !failed.length;
  }

  // A multipart body built by hand: the same bytes on every retry (a browser's FormData picks a new
  // boundary each time, and the server answers a changed body under the same key with 409).
  function multipart(photo) {
    const boundary = `yiwang-${photo.key}`;
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="photo"\r\n` +
      `Content-Type: ${photo.type || "application/octet-stream"}\r\n\r\n`;
    return { body: new Blob([head, photo.blob, `\r\n--${boundary}--\r\n`]), type: `multipart/form-data; boundary=${boundary}` };
  }

  async function post(url, key, body, type) {
    return fetch(url, {
      method: "POST", body, credentials: "same-origin", redirect: "manual",
      headers: { "Content-Type": type, "X-CSRF-Token": csrf(), "Idempotency-Key": key },
    });
  }

  // One item: its photos first (each with its own key, ids kept once known), then the action.
  // Returns "sent", "kept" (refused: shown until discarded) or "later" (no answer: tried again).
  async function send(item) {
    for (const photo of item.photos) {
      if (photo.id != null) continue;
      const form = multipart(photo);
      const answer = await post(`/console/cases/${item.caseId}/attachments`, photo.key, form.body, form.type);
      const verdict = await judge(answer, item);
      if (verdict) return verdict;
      photo.id = (await answer.json()).id;
      await putItem(item);
    }
    const params = { ...item.params };
    if (item.photos.length) params.attachments = item.photos.map((p) => p.id);
    const body = JSON.stringify({ action: item.action, note: item.note, params });
    const answer = await post(`/console/field/cases/${item.caseId}/actions`, item.key, body, "application/json");
    return (await judge(answer, item)) || "sent";
  }

  async function judge(answer, item) {
    if (answer.ok) return null;
    if (answer.status === 401 || answer.type === "opaqueredirect") { signedOut = true; return "later"; }
    if (KEPT.has(answer.status)) {
      item.state = "failed"; item.status = answer.status;
      // A photo refused by its content comes with words in the page's language (``message``).
      try { item.message = (await answer.json()).message || ""; } catch { item.message = ""; }
      return "kept";
    }
    return "later"; // 408, 429, 5xx: the server will take it later
  }

  async function flush() {
    if (flushing) { flushAgain = true; return; } // an item queued mid-flush is sent by the next round
    if (!navigator.onLine) return render();
    flushing = true; flushAgain = false;
    let sentHere = false;
    try {
      for (const item of await allItems()) {
        if (item.state !== "pending") continue;
        let verdict;
        try { verdict = await send(item); } catch { verdict = "later"; } // the network dropped
        if (verdict === "later") break; // keep the order: nothing overtakes a waiting action
        if (verdict === "sent") {
          signedOut = false;
          await dropItem(item.key);
          sentHere ||= String(item.caseId) === document.getElementById("case")?.dataset.caseId;
        } else await putItem(item);
      }
    } finally { flushing = false; }
    if (flushAgain) return flush();
    await render();
    if (sentHere && !(await allItems()).some((i) => i.state === "pending")) location.reload();
  }

  async function queue(form) {
    const error = form.querySelector(".form-error");
    const show = (text) => { error.textContent = text; error.hidden = !text; };
    const input = form.querySelector("input[type=file]");
    const files = input ? [...input.files] : [];
    if (files.length > MAX_PHOTOS) return show(words.tooMany);
    if (files.some((f) => f.size > MAX_PHOTO_BYTES)) return show(words.tooBig);
    if ((await allItems()).length >= MAX_ITEMS) return show(words.full);
    const params = {};
    for (const field of form.querySelectorAll("input[name]:not([type=file]), textarea[name], select[name]")) {
      if (field.name === "note") continue;
      params[field.name] = field.type === "number" ? Number(field.value) : field.value;
    }
    const note = form.querySelector("[name=note]")?.value || "";
    const label = say(words.item, { case: form.dataset.case, action: form.dataset.label });
    const photos = files.map((f) => ({ key: uuid(), blob: f, type: f.type, id: null }));
    await putItem({
      key: uuid(), created: Date.now(), caseId: Number(form.dataset.case), action: form.dataset.action,
      note, params, photos, label, state: "pending", status: null, message: "",
    });
    form.reset(); delete form.dataset.touched; show(navigator.onLine ? "" : words.queued);
    flush();
  }

  async function refreshTasks() { // the task list, re-rendered by the server (its words, its countdowns)
    try {
      const answer = await fetch(location.href, { credentials: "same-origin" });
      if (!answer.ok || answer.redirected) return;
      const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
      for (const id of ["tasks", "task-count"]) {
        const now = document.getElementById(id), next = fresh.getElementById(id);
        if (now && next) now.replaceWith(next);
      }
    } catch { /* offline: the list stays as it is */ }
  }

  // The open case follows what the office does (an approval moves the deadline, a refusal shows):
  // its facts and timeline are swapped in place; the actions too, unless a form is being filled in.
  const filling = () => document.querySelector("#actions form.act[data-touched]") !== null ||
    document.activeElement?.matches("#actions input, #actions textarea, #actions select");
  for (const kind of ["input", "change"]) {
    document.addEventListener(kind, (event) => { const form = event.target.closest?.("form.act"); if (form) form.dataset.touched = "1"; });
  }
  async function refreshCase() {
    try {
      const answer = await fetch(location.href, { credentials: "same-origin", cache: "no-store" });
      if (!answer.ok || answer.redirected) return;
      const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
      for (const id of ["case", "timeline", "actions"]) {
        const now = document.getElementById(id), next = fresh.getElementById(id);
        if (!now || !next || now.innerHTML === next.innerHTML || (id === "actions" && filling())) continue;
        now.replaceWith(next);
        if (id === "actions") for (const form of next.querySelectorAll("form.act")) watch(form);
      }
    } catch { /* offline: the page stays as it is */ }
  }
  function watch(form) { form.addEventListener("submit", (event) => { event.preventDefault(); queue(form); }); }

  for (const form of document.querySelectorAll("form.act")) watch(form);
  const logout = document.querySelector(".field-logout");
  logout?.addEventListener("submit", async (event) => { // a shared phone keeps no pages of the user's
    event.preventDefault();
    if ("caches" in window) for (const name of await caches.keys()) if (name.startsWith(DB_NAME)) await caches.delete(name);
    logout.submit();
  });
  if (document.getElementById("tasks")) {
    new EventSource("/console/stream").addEventListener("change", refreshTasks);
    setInterval(refreshTasks, 60000); // the countdowns move on, and a lost stream is covered
  }
  const open = document.getElementById("case")?.dataset.caseId;
  if (open) {
    new EventSource("/console/stream").addEventListener("change", (event) => {
      let told = {};
      try { told = JSON.parse(event.data); } catch { /* a change all the same */ }
      if (told.more || !Array.isArray(told.ids) || told.ids.map(String).includes(open)) refreshCase();
    });
  }
  window.addEventListener("online", flush);
  window.addEventListener("offline", render);
  setInterval(flush, RETRY_MS);
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/console/field/sw.js", { scope: "/console/field" }).catch(() => {});
  flush();
})();
