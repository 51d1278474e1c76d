// The public reporting page: the phone's position (mapped to a grid by the server) and the photo count.
// Every word shown comes from the page's data attributes (the catalogue), never from this file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("report-form");
  if (!form) return;
  const photos = form.querySelector("input[name=photo]");
  photos.addEventListener("change", () => {
    const max = Number(photos.dataset.max);
    const largest = Math.max(0, ...Array.from(photos.files, (f) => f.size));
    let problem = "";
    if (photos.files.length > max) problem = photos.dataset.tooMany;
    else if (largest > Number(photos.dataset.maxBytes)) problem = photos.dataset.tooLarge;
    photos.setCustomValidity(problem);
    photos.reportValidity();
  });

  const button = document.getElementById("use-position");
  const shown = document.getElementById("position-status");
  const building = document.getElementById("building");
  const lat = document.getElementById("lat");
  const lon = document.getElementById("lon");
  button.addEventListener("click", () => {
    if (!("geolocation" in navigator)) {
      shown.textContent = button.dataset.unsupported;
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (position) => {
        lat.value = position.coords.latitude.toFixed(6);
        lon.value = position.coords.longitude.toFixed(6);
        building.value = ""; // the position decides the grid
        shown.textContent = `${button.dataset.taken} (±${Math.round(position.coords.accuracy)} m)`;
      },
      () => {
        shown.textContent = button.dataset.failed;
      },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 },
    );
  });
  building.addEventListener("change", () => {
    if (building.value) {
      lat.value = "";
      lon.value = "";
      shown.textContent = "";
    }
  });
});
