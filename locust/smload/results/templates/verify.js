// Verification report: instances observed (DescribeEndpoint polls) against simulated, with the offered
// load; failed requests and p99 latency per minute, observed and simulated.
(function () {
  const minutes = (t) => t / 60;
  const x = axis("minutes since the profile started");
  const polls = REPORT.observed.polls;
  const observedInstances = polls.t.map((t, i) => ({x: minutes(t), y: polls.current[i]}));
  const simMinutes = REPORT.simulated.minutes;
  const obsMinutes = REPORT.observed.minutes;
  const perMinute = (rows, key) => rows.map((m) => ({x: minutes(m.t), y: m[key]}));
  chart("instances", {type: "scatter", data: {datasets: [
    line("observed instances (DescribeEndpoint)", observedInstances, COLORS[0], {stepped: true, pointRadius: 0, yAxisID: "n"}),
    line("simulated instances", perMinute(simMinutes, "instances"), COLORS[1], {stepped: true, pointRadius: 0, borderDash: [5, 3], yAxisID: "n"}),
    line("offered req/s", perMinute(simMinutes, "rate"), COLORS[7], {pointRadius: 0, borderWidth: 1, yAxisID: "rps"}),
  ]}, options: {scales: {x, n: axis("instances", {position: "left", ticks: {precision: 0}}),
    rps: axis("req/s", {position: "right", grid: {drawOnChartArea: false}})}}});
  chart("errors", {type: "scatter", data: {datasets: [
    line("observed failed requests", perMinute(obsMinutes, "errors"), COLORS[3], {pointRadius: 2}),
    line("simulated failed requests", perMinute(simMinutes, "errors"), COLORS[1], {pointRadius: 0, borderDash: [5, 3]}),
  ]}, options: {scales: {x, y: axis("per minute")}}});
  chart("latency", {type: "scatter", data: {datasets: [
    line("observed p99 ms", perMinute(obsMinutes, "p99_ms"), COLORS[3], {pointRadius: 2}),
    line("simulated p99 ms", perMinute(simMinutes, "p99_ms"), COLORS[1], {pointRadius: 0, borderDash: [5, 3]}),
  ]}, options: {scales: {x, y: axis("ms")}}});
})();
