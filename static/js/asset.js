// Asset page: the "New person…" choice shows its name field; the latest job is followed live
// and, when it finishes, the page reloads once to show its faces.
(function () {
  "use strict";

  // Without this script the name field is always there (a typed name makes a new person).
  document.querySelectorAll("form[data-new-person]").forEach(function (form) {
    var select = form.querySelector("select");
    var field = form.querySelector(".new-person");
    function update() {
      var wanted = select.value === "new";
      field.hidden = !wanted;
      if (wanted) field.querySelector("input").focus();
    }
    field.hidden = true;
    select.addEventListener("change", update);
  });

  var card = document.querySelector("[data-job-stream]");
  var path = card && card.getAttribute("data-job-stream");
  if (!path) return;
  var state = card.querySelector(".job-state");
  var liveStatus = card.querySelector('[data-role="live-status"]');
  var startedUnfinished = !window.SightlineJobs.isFinished(state.dataset.stage);
  if (!startedUnfinished) return;  // a finished job sends nothing more; Re-run reloads the page

  window.SightlineJobs.stream(path, function (event) {
    if (String(event.job) !== state.dataset.job) return;
    window.SightlineJobs.render(state, event);
    if (startedUnfinished && window.SightlineJobs.isFinished(event.stage)) {
      startedUnfinished = false;
      window.location.reload();
    }
  }, function (text) {
    liveStatus.textContent = text;
  });
})();
