// Progressive enhancement of the pickers in _pickers.html; every form works without this file.
(function () {
  "use strict";

  function regionPicker(select) {
    var groups = Array.prototype.slice.call(select.querySelectorAll("optgroup"));
    var known = {};
    Array.prototype.forEach.call(select.options, function (o) { known[o.value] = o; });
    // The level of a place follows from its code: a county's parent is its prefecture (xxxx00) where the list has
    // one; a municipality's districts and a province's directly administered places hang from the province.
    function parentOf(code) {
      if (!code || /0000$/.test(code)) { return ""; }
      var city = code.slice(0, 4) + "00";
      return city !== code && known[city] ? city : code.slice(0, 2) + "0000";
    }
    function isCounty(code) { var parent = parentOf(code); return parent !== "" && !/0000$/.test(parent); }

    function control(tag, label, cls) {
      var el = document.createElement(tag);
      el.setAttribute("aria-label", label);
      el.className = cls;
      return el;
    }
    var province = control("select", "省份", "region-province");
    province.add(new Option("全部省份", ""));
    groups.forEach(function (g) { province.add(new Option(g.label, g.children[0].value)); });
    var city = control("select", "城市", "region-city");
    var search = control("input", "搜索地区", "region-search");
    search.type = "search";
    search.placeholder = "搜索地区名称或代码,如 石家庄 或 长安区";

    function fillCities() {
      city.innerHTML = "";
      city.add(new Option(province.value ? "全部城市" : "先选省份", ""));
      groups.forEach(function (g) {
        Array.prototype.forEach.call(g.children, function (o) {
          if (province.value && parentOf(o.value) === province.value) {
            city.add(new Option(o.text.slice(g.label.length + 1), o.value));
          }
        });
      });
      city.disabled = !province.value;
    }

    var chosen = select.value;
    if (chosen) {
      province.value = chosen.slice(0, 2) + "0000";
      fillCities();
      city.value = isCounty(chosen) ? parentOf(chosen) : (/0000$/.test(chosen) ? "" : chosen);
    } else {
      fillCities();
    }

    function filter() {
      var words = search.value.trim();
      var first = null;
      groups.forEach(function (g) {
        var shown = 0;
        Array.prototype.forEach.call(g.children, function (o) {
          var v = o.value;
          var inProvince = !province.value || v.slice(0, 2) === province.value.slice(0, 2);
          var inCity = !city.value || v === city.value || parentOf(v) === city.value;
          // Counties appear once a city is chosen or a search names them: the whole country's would bury the rest.
          var level = words || city.value || !isCounty(v);
          var hit = inProvince && inCity && level && (!words || o.text.indexOf(words) >= 0 || v.indexOf(words) === 0);
          o.hidden = !hit;
          if (hit) { shown += 1; if (!first) { first = o; } }
        });
        g.hidden = shown === 0;
      });
      var current = select.selectedOptions[0];
      // Only a search or a chosen province or city picks a place: an untouched picker stays "不选择" (filed
      // nationally), never silently the first province on the list.
      if (first && (words || province.value) && (!current || current.hidden || !current.value)) { select.value = first.value; }
      if (!first && words) { select.value = ""; }
    }
    province.addEventListener("change", function () {
      select.value = province.value;
      fillCities();
      filter();
    });
    city.addEventListener("change", function () {
      select.value = city.value || province.value;
      filter();
    });
    search.addEventListener("input", filter);
    select.parentNode.insertBefore(province, select);
    select.parentNode.insertBefore(city, select);
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
