// The silence form: the custom length field is only needed (and only shown) when "custom" is chosen.
// Without this script it stays visible and is used when "custom" is picked.
"use strict";
(function () {
  const form = document.getElementById("new-silence");
  if (!form) return;
  const duration = form.elements.namedItem("duration");
  const custom = form.querySelector(".custom-hours");
  function update() {
    const chosen = duration.value === "custom";
    custom.hidden = !chosen;
    custom.querySelector("input").required = chosen;
  }
  duration.addEventListener("change", update);
  update();
})();
