// Run report: latency percentiles per request name, errors by type, throughput over time.
(function () {
  const percentiles = ["p50", "p90", "p95", "p99", "p99.9"];
  chart("latency-percentiles", {type: "bar", data: {
    labels: percentiles,
    datasets: REPORT.names.map((n, i) => ({label: n.name, data: percentiles.map((p) => n[`${p}_ms`]),
                                           backgroundColor: COLORS[i % COLORS.length]})),
  }, options: {scales: {y: axis("ms")}}});

  if (REPORT.errors.length) {
    const byType = {};
    REPORT.errors.forEach((e) => { byType[e.type] = (byType[e.type] || 0) + e.count; });
    const types = Object.keys(byType).sort((a, b) => byType[b] - byType[a]);
    chart("errors-by-type", {type: "bar", data: {labels: types,
      datasets: [{label: "failures", data: types.map((t) => byType[t]), backgroundColor: COLORS[3]}]},
      options: {indexAxis: "y", plugins: {legend: {display: false}}, scales: {x: axis("failures")}}});
  }

  // Each latency difference with its interval, in % of the baseline: a floating bar from the low to
  // the high end of the interval, the point estimate as a dot; a bar crossing 0 is no detectable difference.
  const rows = (REPORT.comparison || []).filter((c) => c.unit === "ms" && c.ci_low !== null && c.baseline_value);
  if (rows.length) {
    const pct = (v, c) => 100 * v / c.baseline_value;
    const labels = rows.map((c) => `${c.candidate} vs ${c.baseline}: ${c.metric}`);
    chart("comparison-intervals", {data: {labels, datasets: [
      {type: "bar", label: `${100 * rows[0].confidence}% confidence interval`, data: rows.map((c) => [pct(c.ci_low, c), pct(c.ci_high, c)]),
       backgroundColor: rows.map((c) => c.significant ? (c.difference > 0 ? COLORS[3] : COLORS[2]) : "#b8bfcc"),
       barPercentage: 0.5, order: 2},
      {type: "scatter", label: "difference", data: rows.map((c, i) => ({x: pct(c.difference, c), y: labels[i]})),
       backgroundColor: COLORS[7], pointRadius: 5, order: 1},  // drawn over the bars
    ]}, options: {indexAxis: "y", scales: {x: axis("candidate - baseline, % of the baseline", {beginAtZero: false}),
                                           y: {type: "category"}}}});
  }

  const t = REPORT.timeline;
  chart("throughput-over-time", {type: "scatter", data: {datasets: [
    line("requests/s", t.seconds.map((s, i) => ({x: s, y: t.requests[i]})), COLORS[0], {pointRadius: 0, yAxisID: "rps"}),
    line("failures/s", t.seconds.map((s, i) => ({x: s, y: t.failures[i]})), COLORS[3], {pointRadius: 0, yAxisID: "rps"}),
    line("users", t.users.map(([s, u]) => ({x: s, y: u})), COLORS[7], {pointRadius: 0, stepped: true, yAxisID: "users"}),
  ]}, options: {scales: {
    x: axis("seconds since the start"),
    rps: axis("per second", {position: "left"}),
    users: axis("users", {position: "right", grid: {drawOnChartArea: false}}),
  }}});
})();
