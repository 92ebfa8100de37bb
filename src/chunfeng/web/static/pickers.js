// Progressive enhancement of the pickers in _pickers.html; every form works without this file.
(function () {
  "use strict";

  function regionPicker(select) {
    var groups = Array.prototype.slice.call(select.querySelectorAll("optgroup"));
    var province = document.createElement("select");
    province.setAttribute("aria-label", "省份");
    province.className = "region-province";
    province.add(new Option("全部省份", ""));
    groups.forEach(function (g) { province.add(new Option(g.label, g.label)); });
    var search = document.createElement("input");
    search.type = "search";
    search.placeholder = "搜索地区名称或代码,如 石家庄";
    search.setAttribute("aria-label", "搜索地区");
    search.className = "region-search";
    var chosen = select.selectedOptions[0];
    if (chosen && chosen.parentNode.tagName === "OPTGROUP") { province.value = chosen.parentNode.label; }

    function filter() {
      var words = search.value.trim();
      var first = null;
      groups.forEach(function (g) {
        var inProvince = !province.value || g.label === province.value;
        var shown = 0;
        Array.prototype.forEach.call(g.children, function (o) {
          var hit = inProvince && (!words || o.text.indexOf(words) >= 0 || o.value.indexOf(words) === 0);
          o.hidden = !hit;
          if (hit) { shown += 1; if (!first) { first = o; } }
        });
        g.hidden = shown === 0;
      });
      var current = select.selectedOptions[0];
      // Only a search or a chosen province picks a place: an untouched picker stays "不选择" (filed nationally),
      // never silently the first province on the list.
      if (first && (words || province.value) && (!current || current.hidden || !current.value)) { select.value = first.value; }
      if (!first && words) { select.value = ""; }
    }
    province.addEventListener("change", function () {
      var group = groups.filter(function (g) { return g.label === province.value; })[0];
      if (group) { select.value = group.children[0].value; } else { select.value = ""; }
      filter();
    });
    search.addEventListener("input", filter);
    select.parentNode.insertBefore(province, select);
    select.parentNode.insertBefore(search, select);
    filter();
  }

  function unitPicker(input) {
    var list = document.getElementById(input.getAttribute("list"));
    var url = input.getAttribute("data-unit-picker");
    var timer = null;
    var asked = "";
    function load() {
      var q = input.value.trim();
      if (q === asked) { return; }
      asked = q;
      fetch(url + "?q=" + encodeURIComponent(q), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : ""; })
        .then(function (html) { if (asked === q) { list.innerHTML = html; } });
    }
    input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(load, 200); });
    input.addEventListener("focus", load);
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("select[data-region-picker]"), regionPicker);
    Array.prototype.forEach.call(document.querySelectorAll("input[data-unit-picker]"), unitPicker);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
