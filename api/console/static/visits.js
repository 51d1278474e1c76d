// The visit form's photos: each chosen picture is uploaded to the case (the attachment endpoint checks,
// re-encodes and stores it) and its id goes with the form as a hidden "attachments" field. The form
// works without photos, and without this script.
(function () {
  "use strict";
  var input = document.getElementById("visit-photos");
  if (!input) { return; }
  var ids = document.getElementById("visit-photo-ids");
  var problem = document.getElementById("visit-photo-error");
  var MAX = 3;

  function fail(why) {
    problem.textContent = input.dataset.failed.replace("{why}", why);
    problem.hidden = false;
  }

  input.addEventListener("change", function () {
    problem.hidden = true;
    Array.prototype.slice.call(input.files, 0, MAX).forEach(function (file) {
      var body = new FormData();
      body.append("file", file);
      fetch(input.dataset.upload, {
        method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": input.dataset.csrf }, body: body
      }).then(function (response) {
        return response.json().then(function (answer) {
          if (!response.ok) { fail(answer.message || answer.detail || String(response.status)); return; }
          if (ids.children.length >= MAX) { return; }
          var field = document.createElement("input");
          field.type = "hidden"; field.name = "attachments"; field.value = String(answer.id);
          var thumb = document.createElement("img");
          thumb.src = answer.thumb_url; thumb.alt = ""; thumb.width = 80;
          ids.append(field, thumb);
        });
      }).catch(function () { fail(file.name); });
    });
  });
})();
