// Small progressive enhancements; every form works without this file.
(function () {
  "use strict";

  // Copy buttons are hidden until there is a script to run them.
  document.querySelectorAll("[data-copy]").forEach(function (btn) {
    var target = document.querySelector(btn.getAttribute("data-copy"));
    if (!target || !navigator.clipboard) {
      return;
    }
    btn.hidden = false;
    btn.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(function () {
        var label = btn.textContent;
        btn.textContent = "Copied";
        setTimeout(function () { btn.textContent = label; }, 1500);
      }, function () {
        btn.textContent = "Select and copy";
      });
    });
  });

  // Ask before destructive actions.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (!window.confirm(form.getAttribute("data-confirm"))) {
        ev.preventDefault();
      }
    });
  });

  // Keep the "N of M entries" count in step with the rows being typed.
  var count = document.getElementById("entry-count");
  var form = document.getElementById("registry-form");
  if (count && form) {
    var max = count.getAttribute("data-max");
    var update = function () {
      var n = 0;
      form.querySelectorAll("tbody tr").forEach(function (tr) {
        var host = tr.querySelector("input[name=host]");
        var desc = tr.querySelector("input[name=description]");
        if ((host && host.value.trim() !== "") || (desc && desc.value.trim() !== "")) {
          n++;
        }
      });
      count.textContent = n + " of " + max + " entries";
      count.classList.toggle("over", n > Number(max));
    };
    form.addEventListener("input", update);
  }
})();
