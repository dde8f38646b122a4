// Review queue shortcuts: A approves, R goes to the reason (Enter then rejects), ← → move.
(function () {
  "use strict";
  var review = document.getElementById("review");
  if (!review) return;
  var approve = document.getElementById("approve-form");
  var reason = document.getElementById("reason");

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }
  function go(id) {
    var link = document.getElementById(id);
    if (link) window.location.assign(link.href);
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    var key = event.key;
    if ((key === "a" || key === "A") && approve) {
      event.preventDefault();
      approve.requestSubmit ? approve.requestSubmit() : approve.submit();
    } else if ((key === "r" || key === "R") && reason) {
      event.preventDefault();
      reason.focus();
    } else if (key === "ArrowLeft") {
      go("prev-link");
    } else if (key === "ArrowRight") {
      go("next-link");
    }
  });
})();
