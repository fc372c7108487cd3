// Draws every chart of the page from its JSON (adoption/charts.py): no inline script, for the CSP.
// Each chart is an image named by its caption and described by its numbers table; its toolbar keeps
// plotly's buttons (download, reset) outside the image, so they stay reachable from the keyboard.
(function () {
  "use strict";
  function draw(div) {
    const data = document.getElementById(div.id + "-figure");
    if (!data || !window.Plotly) return;
    const spec = JSON.parse(data.textContent);
    window.Plotly.newPlot(div, spec.data, spec.layout, spec.config).then(function () {
      const svgs = div.querySelectorAll("svg.main-svg");
      svgs.forEach(function (svg, index) {
        if (index === 0) {
          svg.setAttribute("role", "img");
          svg.setAttribute("aria-labelledby", div.dataset.caption);
          if (document.getElementById(div.dataset.table)) svg.setAttribute("aria-describedby", div.dataset.table);
        } else {
          svg.setAttribute("aria-hidden", "true"); // hover labels and legends drawn again on top
        }
      });
      div.classList.add("drawn");
    });
  }
  function drawAll() {
    document.querySelectorAll(".plotly-chart").forEach(draw);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
