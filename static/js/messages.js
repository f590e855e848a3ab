// Messages after an action stay at the top of the window (the page may have been sent down to
// a face) until their reader closes them. Without this script they stay, and no dead button shows.
(function () {
  "use strict";
  document.querySelectorAll(".flash .message-close").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var flash = button.closest(".flash");
      button.closest(".message").remove();
      if (!flash.querySelector(".message")) flash.remove();
      // The keyboard carries on where the page was sent (a face), or at the top of the page.
      var target = document.querySelector(":target");
      (target && target.hasAttribute("tabindex") ? target : document.getElementById("main")).focus();
    });
  });
})();
