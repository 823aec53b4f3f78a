"use strict";
// Shared by the calibration and run reports: the embedded data and Chart.js defaults.
const REPORT = JSON.parse(document.getElementById("report-data").textContent);
const COLORS = ["#1f5fbf", "#e07b00", "#2e9e44", "#c62828", "#7b3fb5", "#00838f", "#8d6e63", "#5b6475"];
Chart.defaults.animation = false;  // deterministic rendering: screenshots and tests see the final chart
Chart.defaults.maintainAspectRatio = false;
Chart.defaults.font.size = 12;

function line(label, points, color, extra) {
  return Object.assign({label, data: points, borderColor: color, backgroundColor: color,
                        showLine: true, pointRadius: 3, borderWidth: 2, tension: 0}, extra || {});
}

function axis(title, extra) {
  return Object.assign({title: {display: true, text: title}, beginAtZero: true}, extra || {});
}

function chart(id, config) {
  return new Chart(document.getElementById(id), config);
}
