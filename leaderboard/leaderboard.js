// Sortable leaderboard table: click a header to sort by that column, again to reverse.
// Rows are moved, never rebuilt: no HTML is created from data.
(function () {
  "use strict";
  var table = document.getElementById("board");
  if (!table) { return; }
  var heads = table.querySelectorAll("thead tr.cols th");
  var body = table.tBodies[0];

  function key(row, index, numeric) {
    var raw = row.cells[index].getAttribute("data-sort");
    if (raw === null || raw === "") { return null; }
    return numeric ? parseFloat(raw) : raw;
  }

  function sortBy(index, direction) {
    var th = heads[index];
    var numeric = th.getAttribute("data-type") === "num";
    var sign = direction === "asc" ? 1 : -1;
    var rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (row, i) { row._order = i; });
    rows.sort(function (a, b) {
      var x = key(a, index, numeric), y = key(b, index, numeric);
      if (x === null && y === null) { return a._order - b._order; }
      if (x === null) { return 1; }   // missing values always last
      if (y === null) { return -1; }
      if (x < y) { return -sign; }
      if (x > y) { return sign; }
      return a._order - b._order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", direction === "asc" ? "ascending" : "descending");
  }

  Array.prototype.forEach.call(heads, function (th, index) {
    var button = th.querySelector("button");
    if (!button) { return; }
    button.addEventListener("click", function () {
      var current = th.getAttribute("aria-sort");
      var first = th.getAttribute("data-dir") || "asc";
      var direction = current === "ascending" ? "desc" : current === "descending" ? "asc" : first;
      sortBy(index, direction);
    });
  });

  var splits = document.getElementById("show-splits");
  if (splits) {
    splits.addEventListener("change", function () {
      document.body.classList.toggle("folded", !splits.checked);
    });
  }

  // the filters: rows whose name (or full run name) holds every word typed, whose size (billions of
  // parameters) is in the range given, whose license is the one chosen
  var filter = document.getElementById("filter");
  var sizeMin = document.getElementById("size-min"), sizeMax = document.getElementById("size-max");
  var license = document.getElementById("license");

  function bound(input) {
    return input && input.value !== "" && !isNaN(parseFloat(input.value)) ? parseFloat(input.value) : null;
  }

  function apply() {
    var words = filter ? filter.value.toLowerCase().split(/\s+/).filter(Boolean) : [];
    var lo = bound(sizeMin), hi = bound(sizeMax), chosen = license ? license.value : "";
    Array.prototype.forEach.call(body.rows, function (row) {
      var cell = row.querySelector("td.name");
      var text = (cell.querySelector(".model").textContent + " " + cell.getAttribute("data-full")).toLowerCase();
      var raw = row.getAttribute("data-params"), size = raw ? parseFloat(raw) : null;
      row.hidden = !(words.every(function (w) { return text.indexOf(w) >= 0; }) &&
                     (lo === null || (size !== null && size >= lo)) && (hi === null || (size !== null && size <= hi)) &&
                     (chosen === "" || row.getAttribute("data-license") === chosen));
    });
  }
  [filter, sizeMin, sizeMax].forEach(function (input) { if (input) { input.addEventListener("input", apply); } });
  if (license) { license.addEventListener("change", apply); }

  [["show-reported", "hide-reported"], ["show-measured", "hide-measured"]].forEach(function (pair) {
    var box = document.getElementById(pair[0]);
    if (box) {
      box.addEventListener("change", function () { document.body.classList.toggle(pair[1], !box.checked); });
    }
  });
}());
