// Asset page: follow the latest job live; when it finishes, reload once to show its faces.
(function () {
  "use strict";

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
