// Live job state for the pages: one WebSocket to ws/jobs/ (or ws/jobs/<id>/), reconnected with
// backoff, and one renderer for the job-state block (templates/recognition/_job_state.html).
(function () {
  "use strict";

  var TERMINAL = ["completed", "failed"];
  // Closed by the server for "log in" / "not yours": retrying cannot help.
  var FINAL_CLOSE_CODES = [4401, 4404];
  var MAX_DELAY_MS = 30000;

  function socketUrl(path) {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + window.location.host + path;
  }

  // Returns {refresh()}: asks the server to send every current job state again.
  function stream(path, onEvent, onStatus) {
    var attempt = 0;
    var report = onStatus || function () {};
    var socket = null;

    function connect() {
      socket = new WebSocket(socketUrl(path));
      socket.onopen = function () {
        attempt = 0;
        report("Live updates on.");
      };
      socket.onmessage = function (message) {
        var event;
        try {
          event = JSON.parse(message.data);
        } catch (error) {
          return;
        }
        if (event && event.type === "job.stage") onEvent(event);
      };
      socket.onclose = function (close) {
        if (FINAL_CLOSE_CODES.indexOf(close.code) !== -1) {
          report("Live updates stopped: reload the page.");
          return;
        }
        attempt += 1;
        // Exponential backoff with jitter, so a restarted server is not hit by every tab at once.
        var delay = Math.min(MAX_DELAY_MS, 1000 * Math.pow(2, attempt - 1)) * (0.5 + Math.random() / 2);
        report("Connection lost; reconnecting…");
        window.setTimeout(connect, delay);
      };
    }

    connect();
    return {
      refresh: function () {
        if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "state" }));
      },
    };
  }

  function ensureChildren(element) {
    if (element.querySelector('[data-role="stage"]')) return;
    element.textContent = "";
    var badge = document.createElement("span");
    badge.setAttribute("data-role", "stage");
    var progress = document.createElement("progress");
    progress.max = 100;
    progress.setAttribute("data-role", "progress");
    progress.setAttribute("aria-label", "Progress");
    var error = document.createElement("span");
    error.className = "job-error";
    error.setAttribute("data-role", "error");
    element.append(badge, " ", progress, " ", error);
  }

  // Show ``event`` in a .job-state element; events of an older job than the one shown are ignored.
  function render(element, event) {
    var shown = Number(element.dataset.job || 0);
    if (shown && event.job < shown) return false;
    ensureChildren(element);
    element.dataset.job = event.job;
    element.dataset.stage = event.stage;
    var badge = element.querySelector('[data-role="stage"]');
    badge.textContent = event.stage;
    badge.className = "badge stage-" + event.stage;
    var progress = element.querySelector('[data-role="progress"]');
    progress.value = event.progress;
    progress.textContent = event.progress + "%";
    var error = element.querySelector('[data-role="error"]');
    error.hidden = event.stage !== "failed";
    error.textContent = "failed: " + (event.error || "unknown error");
    return true;
  }

  window.SightlineJobs = {
    stream: stream,
    render: render,
    isFinished: function (stage) { return TERMINAL.indexOf(stage) !== -1; },
  };
})();
