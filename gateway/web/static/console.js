// Live alert board: one EventSource on /events; each alert event re-renders the board (htmx when installed,
// else fetch), then flashes the alert's row and, for a new fever, beeps. Nothing else runs in the page.
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board || !window.EventSource) { return; }
  var state = document.getElementById("live-state");

  function refresh() {
    var url = board.dataset.fragment + window.location.search;
    if (window.htmx) {
      return window.htmx.ajax("GET", url, { target: board, swap: "innerHTML" });
    }
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error("board " + r.status); }
      return r.text();
    }).then(function (html) { board.innerHTML = html; });
  }

  function beep() {
    try {
      var ctx = new (window.AudioContext || window.webkitAudioContext)();
      var osc = ctx.createOscillator();
      osc.frequency.value = 880;
      osc.connect(ctx.destination);
      osc.start();
      osc.stop(ctx.currentTime + 0.3);
    } catch (e) { /* no sound: the flash still shows */ }
  }

  function flash(alertId) {
    var rows = board.querySelectorAll("tr.alert");
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].dataset.alertId === alertId) { rows[i].classList.add("flash"); }
    }
  }

  var source = new EventSource(board.dataset.live);
  source.addEventListener("open", function () { if (state) { state.classList.add("on"); } });
  source.addEventListener("error", function () { if (state) { state.classList.remove("on"); } });
  source.addEventListener("alert", function (e) {
    var event = JSON.parse(e.data);
    refresh().then(function () {
      flash(event.alert_id);
      if (event.kind === "fever" && event.event === 1) { beep(); }
    });
  });
})();
