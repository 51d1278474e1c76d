// The call form's location pickers: a community narrows the grids, a grid the buildings. Without this
// script every option stays listed and the server checks that they belong together.
"use strict";
(function () {
  const form = document.getElementById("intake");
  if (!form) return;
  const community = form.elements.namedItem("community");
  const grid = form.elements.namedItem("grid");
  const building = form.elements.namedItem("building");

  function narrow(select, keep) {
    for (const option of select.options) {
      if (!option.value) continue;
      const shown = keep(option);
      option.hidden = !shown;
      option.disabled = !shown;
      if (!shown && option.selected) select.value = "";
    }
  }

  function update() {
    narrow(grid, (o) => !community.value || o.dataset.community === community.value);
    narrow(building, (o) => (!grid.value && !community.value) ||
      (grid.value ? o.dataset.grid === grid.value : o.dataset.community === community.value));
  }

  community.addEventListener("change", update);
  grid.addEventListener("change", function () {
    const chosen = grid.selectedOptions[0];
    if (chosen && chosen.dataset.community && community.value !== chosen.dataset.community) {
      community.value = chosen.dataset.community;
    }
    update();
  });
  update();
})();
