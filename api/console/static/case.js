// The case page, live: the server says "change" (server-sent events) and the page re-reads itself and
// swaps the parts that differ: summary, requests, actions, supervision, evidence, acknowledgements,
// timeline. No reload, and no
// inline script (see the CSP). A form someone is filling in is not swapped from under them; it follows
// once it is sent or cleared (the server re-checks a stale version against the case as it is now).
(() => {
  const root = document.getElementById("case-live");
  if (!root) return;
  const PARTS = ["case-summary", "requests-slot", "actions", "supervision-slot", "evidence-panel", "acks-slot", "timeline-panel"];
  const FORMS = new Set(["requests-slot", "actions", "supervision-slot"]);
  const status = document.getElementById("live-status");
  let signature = root.dataset.signature, busy = false, again = false, held = false;
  root.dataset.liveUpdates = "0";

  function editing(part) {
    const el = document.getElementById(part);
    if (!el) return false;
    const focused = document.activeElement;
    if (el.contains(focused) && focused.matches("input, select, textarea")) return true;
    return [...el.querySelectorAll("input[name]:not([type=hidden]), textarea")].some((f) => f.value !== f.defaultValue);
  }

  function swap(fresh) {
    let kept = false;
    for (const part of PARTS) {
      const mine = document.getElementById(part), theirs = fresh.getElementById(part);
      if (!mine || !theirs || mine.innerHTML === theirs.innerHTML) continue;
      if (FORMS.has(part) && editing(part)) { kept = true; continue; }
      mine.replaceWith(document.importNode(theirs, true));
    }
    return kept;
  }

  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const answer = await fetch(location.pathname, { credentials: "same-origin", cache: "no-store" });
      const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
      const next = fresh.getElementById("case-live");
      if (!answer.ok || !next) return; // signed out or gone: the next click shows why
      held = swap(fresh);
      if (next.dataset.signature !== signature) {
        signature = root.dataset.signature = next.dataset.signature;
        root.dataset.liveUpdates = String(Number(root.dataset.liveUpdates) + 1);
      }
      // The deployment's time zone, like every time the console shows (not the browser's).
      const at = new Date().toLocaleTimeString(document.documentElement.lang, { timeZone: root.dataset.tz, hour12: false });
      status.textContent = held ? root.dataset.waiting : root.dataset.updated + " " + at;
    } catch (err) {
      again = true; // offline for a moment: try once more below
    } finally {
      busy = false;
      if (again) { again = false; setTimeout(refresh, 2000); }
    }
  }

  // A held form follows as soon as it is sent, cleared or left.
  document.addEventListener("focusout", () => { if (held) setTimeout(refresh, 300); });

  function connect() {
    const source = new EventSource(location.pathname + "/stream?seen=" + encodeURIComponent(signature));
    source.addEventListener("change", (event) => { if (event.data !== signature) refresh(); });
    source.addEventListener("error", () => {
      // The browser retries a dropped stream itself; a refused one (429, 404) is closed: retry later.
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 15000);
    });
  }
  connect();
})();
