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

  // A correction comes back to #face-N: unfold it if it is among the unclear detections, and
  // put the keyboard there too, not at the top of the page.
  var target = location.hash && document.getElementById(location.hash.slice(1));
  var folded = target && target.closest("details");
  if (folded) {
    folded.open = true;
    target.scrollIntoView();
  }
  if (target && target.classList.contains("face-item")) {
    target.tabIndex = -1;
    target.focus({ preventScroll: true });
  }

  // A video: play from a bar of the timeline (or a track's time range, or ?t=), and draw the
  // boxes of the faces of the moment over it.
  var video = document.getElementById("asset-video");
  if (video) {
    var seek = function (seconds) {
      video.currentTime = seconds;
      video.play().catch(function () { /* autoplay refused: the frame is shown, the user plays */ });
    };
    document.querySelectorAll("[data-seek]").forEach(function (element) {
      element.addEventListener("click", function (click) {
        click.preventDefault();
        seek(Number(element.dataset.seek));
        video.scrollIntoView({ block: "nearest" });
      });
    });
    if (video.dataset.startAt) {
      video.addEventListener("loadedmetadata", function () { seek(Number(video.dataset.startAt)); }, { once: true });
    }
    var facesData = document.getElementById("video-faces");
    var faces = facesData ? JSON.parse(facesData.textContent) : [];
    var layer = document.querySelector(".video-boxes");
    var width = Number(video.dataset.width), height = Number(video.dataset.height);
    var interval = Number(video.dataset.sampleSeconds) || 0.5;
    var sampleTimes = faces.map(function (face) { return face.t; })
      .filter(function (t, i, all) { return all.indexOf(t) === i; })
      .sort(function (a, b) { return a - b; });
    // The sample on screen: the last one at or before now (0.05 s early, for seeks that land
    // just short of it), for one interval at most, so a gap in the samples shows no stale boxes.
    // One sample at a time: samples are not exactly ``interval`` apart (0.5005 s at 29.97 fps),
    // and a window per face drew two samples' boxes at once near each boundary.
    var currentSample = function (now) {
      var current = null;
      for (var i = 0; i < sampleTimes.length && sampleTimes[i] <= now + 0.05; i++) current = sampleTimes[i];
      return current !== null && now - current < interval * 1.5 ? current : null;
    };
    var drawBoxes = function () {
      var sample = currentSample(video.currentTime);
      layer.textContent = "";
      faces.forEach(function (face) {
        if (face.t !== sample) return;
        var box = document.createElement("div");
        box.className = ("video-box " + (face.placement || "")).trim();
        box.style.left = (100 * face.box[0] / width) + "%";
        box.style.top = (100 * face.box[1] / height) + "%";
        box.style.width = (100 * (face.box[2] - face.box[0]) / width) + "%";
        box.style.height = (100 * (face.box[3] - face.box[1]) / height) + "%";
        var label = document.createElement("span");
        label.textContent = face.label;
        label.title = face.label;  // a long name is cut short on the video
        box.append(label);
        layer.append(box);
      });
    };
    ["timeupdate", "seeked", "loadeddata"].forEach(function (name) { video.addEventListener(name, drawBoxes); });
  }

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
