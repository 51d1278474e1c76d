// Live SLA countdowns, and a reload whenever any case changes (server-sent events).
// The page passes its translated "overdue" label on the script element (no inline script: see the CSP).
const overdue = document.currentScript.dataset.overdue;
function tick() {
  for (const cell of document.querySelectorAll(".countdown")) {
    const due = Date.parse(cell.dataset.due), start = Date.parse(cell.dataset.start), now = Date.now();
    const left = due - now, share = left / Math.max(due - start, 1);
    const mins = Math.floor(Math.abs(left) / 60000), text = Math.floor(mins / 60) + "h" + String(mins % 60).padStart(2, "0") + "m";
    cell.textContent = left < 0 ? overdue + " " + text : text;
    cell.className = "countdown " + (left < 0 ? "due-over" : share < 0.2 ? "due-soon" : "due-ok");
  }
}
tick(); setInterval(tick, 15000);
new EventSource("/console/stream").addEventListener("change", () => location.reload());
