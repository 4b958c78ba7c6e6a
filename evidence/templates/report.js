// Filters by status and control. Without JavaScript the form stays hidden and every finding shows.
(function () {
  "use strict";
  document.documentElement.setAttribute("data-js", "ready");
  var form = document.getElementById("filters");
  if (!form) { return; }
  form.hidden = false;
  var boxes = form.querySelectorAll("input[name=status]");
  var select = form.querySelector("select[name=control]");
  var count = document.getElementById("filter-count");
  function apply() {
    var shown = {};
    boxes.forEach(function (box) { shown[box.value] = box.checked; });
    var only = select.value;
    var visible = 0;
    document.querySelectorAll("tr.finding").forEach(function (row) {
      var show = shown[row.getAttribute("data-status")] && (!only || row.getAttribute("data-control") === only);
      row.classList.toggle("hidden-by-filter", !show);
      if (show) { visible += 1; }
    });
    document.querySelectorAll("section.control").forEach(function (section) {
      var rows = section.querySelectorAll("tr.finding:not(.hidden-by-filter)").length;
      var match = !only || section.getAttribute("data-control") === only;
      section.classList.toggle("hidden-by-filter", !match || (rows === 0 && section.querySelector("tr.finding") !== null));
    });
    count.textContent = visible + " finding(s) shown";
  }
  // A link can preselect the filters: report.html?status=fail,error&control=TLS-01
  var query = new URLSearchParams(window.location.search);
  if (query.get("status")) {
    var wanted = query.get("status").split(",");
    boxes.forEach(function (box) { box.checked = wanted.indexOf(box.value) >= 0; });
  }
  if (query.get("control")) { select.value = query.get("control"); }
  form.addEventListener("change", apply);
  form.addEventListener("reset", function () { window.setTimeout(apply, 0); });
  apply();
  // Printing keeps passing observations collapsed (their reasons still print): the printed pack stays short,
  // and every observation is in the HTML and in findings.json.
})();
