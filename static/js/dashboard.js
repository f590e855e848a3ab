// Dashboard: upload files one by one through POST /upload/ (JSON answers), add their rows,
// and keep every row's processing state, and the totals, live from ws/jobs/.
(function () {
  "use strict";

  var form = document.getElementById("upload-form");
  var rows = document.querySelector('[data-role="asset-rows"]');
  var list = document.querySelector('[data-role="asset-list"]');
  var emptyState = document.querySelector('[data-role="empty-state"]');
  var results = form.querySelector('[data-role="upload-results"]');
  var liveStatus = document.querySelector('[data-role="live-status"]');
  var jobStream = null;

  var stats = document.querySelector("[data-counts-url]");
  var countsTimer = null;

  // The totals at the top: asked for again (once per burst of events) as files arrive and finish.
  function refreshCounts() {
    window.clearTimeout(countsTimer);
    countsTimer = window.setTimeout(function () {
      fetch(stats.dataset.countsUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (counts) {
          if (!counts) return;
          stats.querySelectorAll("[data-count]").forEach(function (element) {
            var value = counts[element.dataset.count];
            if (element.dataset.count === "recognised_percent") {
              element.textContent = value === null ? "–" : value + "%";
            } else if (typeof value === "number") {
              element.textContent = value;
            }
          });
          stats.querySelectorAll("[data-label-of]").forEach(function (label) {
            var value = counts[label.dataset.labelOf];
            if (typeof value === "number") label.textContent = value === 1 ? label.dataset.one : label.dataset.many;
          });
        })
        .catch(function () { /* the totals stay as they were; a reload shows them */ });
    }, 300);
  }

  function rowOf(assetId) {
    return rows.querySelector('tr[data-asset="' + assetId + '"]');
  }

  function showRow(html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    var row = template.content.firstElementChild;
    var existing = rowOf(row.dataset.asset);
    if (existing) existing.replaceWith(row);
    else rows.prepend(row);
    list.hidden = false;
    emptyState.hidden = true;
    // Events sent before the row existed were dropped: ask for the current states again.
    if (jobStream) jobStream.refresh();
  }

  function say(item, text, ok) {
    item.textContent = text;
    item.className = ok ? "upload-ok" : "upload-error";
  }

  async function uploadOne(file, token) {
    var item = document.createElement("li");
    item.textContent = file.name + ": uploading…";
    results.append(item);
    var body = new FormData();
    body.append("files", file, file.name);
    var response;
    try {
      response = await fetch(form.action, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRFToken": token },
      });
    } catch (error) {
      say(item, file.name + ": the upload did not reach the server (" + error.message + ").", false);
      return;
    }
    var answer = null;
    try {
      answer = await response.json();
    } catch (error) {
      // A proxy's size limit or a CSRF refusal answers HTML, not our JSON.
      say(item, file.name + ": refused (HTTP " + response.status + ").", false);
      return;
    }
    var result = answer.results && answer.results[0];
    if (!result) {
      say(item, file.name + ": " + (answer.message || "refused (HTTP " + response.status + ")."), false);
      return;
    }
    say(item, result.name + ": " + result.message, result.ok);
    if (result.ok) {
      showRow(result.row_html);
      refreshCounts();
    }
  }

  form.addEventListener("submit", async function (submit) {
    submit.preventDefault();
    var input = form.querySelector('input[type="file"]');
    var token = form.querySelector('input[name="csrfmiddlewaretoken"]').value;
    var files = Array.from(input.files);
    var button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    results.textContent = "";
    // One request per file: each gets its own answer, and one refusal does not hold up the rest.
    for (var i = 0; i < files.length; i++) {
      await uploadOne(files[i], token);
    }
    input.value = "";
    button.disabled = false;
  });

  function refreshFaceCount(assetId, row) {
    fetch("/api/v1/assets/" + assetId + "/", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (asset) {
        if (asset && typeof asset.face_count === "number") {
          row.querySelector('[data-role="face-count"]').textContent = asset.face_count;
        }
      })
      .catch(function () { /* the count stays as it was; a reload shows it */ });
  }

  jobStream = window.SightlineJobs.stream("/ws/jobs/", function (event) {
    var row = rowOf(event.asset);
    if (!row) return;
    var state = row.querySelector(".job-state");
    var wasFinished = window.SightlineJobs.isFinished(state.dataset.stage || "");
    if (window.SightlineJobs.render(state, event) && window.SightlineJobs.isFinished(event.stage) && !wasFinished) {
      if (event.stage === "completed") refreshFaceCount(event.asset, row);
      refreshCounts();
    }
  }, function (text) {
    liveStatus.textContent = text;
  });
})();
