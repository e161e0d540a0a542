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
