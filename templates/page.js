"use strict";
// Filters: each select keeps the items of its group whose data attribute lists the chosen value. Without
// JavaScript the bars stay hidden and every item shows.
document.querySelectorAll("div.filters[data-for]").forEach(function (bar) {
  var group = bar.getAttribute("data-for");
  var items = Array.prototype.slice.call(document.querySelectorAll('[data-group="' + group + '"]'));
  var sections = Array.prototype.slice.call(document.querySelectorAll('[data-section="' + group + '"]'));
  var selects = Array.prototype.slice.call(bar.querySelectorAll("select"));
  var shown = bar.querySelector(".shown");
  function matches(item) {
    return selects.every(function (select) {
      if (!select.value) return true;
      var values = (item.getAttribute("data-" + select.name) || "").split(" ");
      return values.indexOf(select.value) >= 0;
    });
  }
  function apply() {
    var count = 0;
    items.forEach(function (item) {
      var keep = matches(item);
      item.hidden = !keep;
      if (keep) count += 1;
    });
    sections.forEach(function (section) {
      section.hidden = !section.querySelector('[data-group="' + group + '"]:not([hidden])');
    });
    if (shown) shown.textContent = String(count);
  }
  selects.forEach(function (select) {
    select.addEventListener("change", apply);
  });
  bar.hidden = false;
  apply();
});
// Sortable tables: a click on a column's heading orders the rows by that column, a second click reverses them.
document.querySelectorAll("table.sortable").forEach(function (table) {
  var body = table.tBodies[0];
  Array.prototype.slice.call(table.tHead.rows[0].cells).forEach(function (heading, column) {
    heading.tabIndex = 0;
    heading.title = "Sort by this column";
    function sort() {
      var ascending = heading.getAttribute("aria-sort") !== "ascending";
      Array.prototype.slice.call(table.tHead.rows[0].cells).forEach(function (cell) {
        cell.removeAttribute("aria-sort");
      });
      heading.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].textContent.trim();
        var y = b.cells[column].textContent.trim();
        return (ascending ? 1 : -1) * x.localeCompare(y, undefined, { numeric: true });
      });
      rows.forEach(function (row) {
        body.appendChild(row);
      });
    }
    heading.addEventListener("click", sort);
    heading.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        sort();
      }
    });
  });
});
