(function () {
  "use strict";
  function key(cell) {
    var v = cell.getAttribute("data-sort");
    if (v === null) { v = cell.textContent.trim(); }
    var n = Number(v);
    return v !== "" && !isNaN(n) ? n : v.toLowerCase();
  }
  function compare(x, y) {
    if (typeof x !== typeof y) { return typeof x === "number" ? -1 : 1; }
    return x < y ? -1 : x > y ? 1 : 0;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, col) {
      var button = th.querySelector("button");
      if (!button) { return; }
      button.addEventListener("click", function () {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var r = compare(key(a.cells[col]), key(b.cells[col]));
          return ascending ? r : -r;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
  var filter = document.getElementById("code-filter");
  var status = document.getElementById("filter-status");
  if (filter) {
    filter.addEventListener("change", function () {
      var code = filter.value;
      var shown = 0;
      document.querySelectorAll("tr[data-code]").forEach(function (row) {
        row.hidden = code !== "" && row.getAttribute("data-code") !== code;
        if (!row.hidden && row.closest("#findings-table")) { shown += 1; }
      });
      if (status) {
        status.textContent = shown + (shown === 1 ? " finding" : " findings") + " shown" +
          (code ? " for " + code : "");
      }
    });
  }
}());
