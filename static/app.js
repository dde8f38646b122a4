// Small page helpers shared by every admin page (no inline script: the CSP forbids it).
(function () {
  "use strict";

  // Dates are shown in the viewer's time zone: tell the server once which one it is.
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && document.cookie.indexOf("ecogram_tz=" + encodeURIComponent(zone)) < 0) {
      document.cookie = "ecogram_tz=" + encodeURIComponent(zone) +
        "; path=/; max-age=31536000; samesite=strict";
    }
  } catch (e) { /* no Intl: the server shows UTC */ }

  document.addEventListener("DOMContentLoaded", function () {
    // Main navigation: on narrow screens a "Menu" button opens the list of every section.
    var nav = document.getElementById("mainnav");
    var menu = nav && nav.querySelector(".menu-button");
    if (menu) {
      menu.hidden = false;
      nav.classList.add("has-menu");
      var setOpen = function (open) {
        menu.setAttribute("aria-expanded", open ? "true" : "false");
        nav.classList.toggle("is-open", open);
      };
      menu.addEventListener("click", function () {
        setOpen(menu.getAttribute("aria-expanded") !== "true");
      });
      document.addEventListener("keydown", function (event) {
        if (event.key === "Escape" && nav.classList.contains("is-open")) {
          setOpen(false);
          menu.focus();
        }
      });
      // A tap beside the open menu closes it.
      document.addEventListener("click", function (event) {
        if (nav.classList.contains("is-open") && !nav.contains(event.target)) setOpen(false);
      });
    }

    // Forms that destroy something ask first.
    Array.prototype.forEach.call(document.querySelectorAll("form[data-confirm]"), function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });

    // Copy buttons: data-copy="id of the element whose text to copy".
    Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), function (btn) {
      btn.hidden = false;
      btn.addEventListener("click", function () {
        var source = document.getElementById(btn.dataset.copy);
        if (!source) return;
        var text = source.value !== undefined ? source.value : source.textContent;
        var done = function () {
          var label = btn.textContent;
          btn.textContent = btn.dataset.copied || label;
          setTimeout(function () { btn.textContent = label; }, 1500);
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, function () {});
        } else if (source.select) {
          source.select();
          document.execCommand("copy");
          done();
        }
      });
    });

    // Library filters fold on a phone unless one is in use: the photos come first.
    var filterBox = document.querySelector(".filter-box");
    if (filterBox && !filterBox.hasAttribute("data-in-use") &&
        window.matchMedia("(max-width: 40em)").matches) {
      filterBox.open = false;
    }

    // Library: "select all" and the count of selected photos.
    var all = document.getElementById("select-all");
    var boxes = document.querySelectorAll("input[name=ids]");
    var count = document.getElementById("selected-count");
    var refresh = function () {
      var n = Array.prototype.filter.call(boxes, function (b) { return b.checked; }).length;
      if (count) count.textContent = count.dataset.template.replace("{n}", n);
      Array.prototype.forEach.call(boxes, function (b) {
        var card = b.closest(".card");
        if (card) card.classList.toggle("is-selected", b.checked);
      });
    };
    if (all) {
      all.hidden = false;
      all.addEventListener("change", function () {
        Array.prototype.forEach.call(boxes, function (b) { b.checked = all.checked; });
        refresh();
      });
    }
    Array.prototype.forEach.call(boxes, function (b) { b.addEventListener("change", refresh); });
    if (boxes.length) refresh();

    // Bulk action: show the reason only for reject and the format only for export.
    var action = document.getElementById("bulk-action");
    if (action) {
      var sync = function () {
        document.querySelectorAll("[data-for-action]").forEach(function (node) {
          node.hidden = node.dataset.forAction !== action.value;
        });
      };
      action.addEventListener("change", sync);
      sync();
    }
  });
})();
