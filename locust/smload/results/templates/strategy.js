// Autoscaling strategy report: per policy, the load against the capacity in service and the instances,
// then predicted latency and errors; and the instances of every policy on one chart.
(function () {
  const minutes = (t) => t / 60;
  const series = (tl, key) => tl.t.map((t, i) => ({x: minutes(t), y: tl[key][i]}));
  const ms = (REPORT.slo || []).map((text) => {
    const m = /^p([0-9.]+)\s*<=?\s*([0-9.]+)\s*(ms|s)$/.exec(text.replace(/\s+/g, ""));
    return m ? {text, p: m[1], ms: parseFloat(m[2]) * (m[3] === "s" ? 1000 : 1)} : null;
  }).filter(Boolean);
  const x = axis("minutes since the start");

  const all = [];
  REPORT.policies.forEach((p, i) => {
    all.push(line(`instances: ${p.name}`, series(p.timeline, "instances"), COLORS[i % COLORS.length],
      {stepped: true, pointRadius: 0, yAxisID: "n"}));
  });
  if (REPORT.policies.length) {
    all.push(line("offered req/s", series(REPORT.policies[0].timeline, "rate"), COLORS[7],
      {pointRadius: 0, borderDash: [4, 3], yAxisID: "rps"}));
  }
  chart("instances-all", {type: "scatter", data: {datasets: all}, options: {scales: {
    x, n: axis("instances", {position: "left", ticks: {precision: 0}}),
    rps: axis("req/s", {position: "right", grid: {drawOnChartArea: false}})}}});

  REPORT.policies.forEach((p, i) => {
    const tl = p.timeline;
    chart(`load-${i}`, {type: "scatter", data: {datasets: [
      line("offered req/s", series(tl, "rate"), COLORS[0], {pointRadius: 0, yAxisID: "rps"}),
      line("capacity in service req/s", series(tl, "capacity_rps"), COLORS[2], {stepped: true, pointRadius: 0, yAxisID: "rps"}),
      line("instances", series(tl, "instances"), COLORS[4], {stepped: true, pointRadius: 0, yAxisID: "n"}),
      line("desired instances", series(tl, "desired"), COLORS[7], {stepped: true, pointRadius: 0, borderDash: [4, 3], yAxisID: "n"}),
    ]}, options: {scales: {x, rps: axis("req/s", {position: "left"}),
      n: axis("instances", {position: "right", grid: {drawOnChartArea: false}, ticks: {precision: 0}})}}});
    const latency = [
      line("p50 ms", series(tl, "p50_ms"), COLORS[0], {pointRadius: 0, yAxisID: "ms"}),
      line("p99 ms", series(tl, "p99_ms"), COLORS[3], {pointRadius: 0, yAxisID: "ms"}),
      line("errors", series(tl, "errors"), COLORS[5], {pointRadius: 0, yAxisID: "errors"}),
    ];
    const end = tl.t.length ? minutes(tl.t[tl.t.length - 1]) : 1;
    ms.forEach((o) => latency.push(line(`SLO ${o.text}`, [{x: 0, y: o.ms}, {x: end, y: o.ms}], COLORS[6],
      {borderDash: [6, 4], pointRadius: 0, borderWidth: 1.5, yAxisID: "ms"})));
    chart(`latency-${i}`, {type: "scatter", data: {datasets: latency}, options: {scales: {x,
      ms: axis("latency (ms)", {position: "left"}),
      errors: axis("failed requests per row", {position: "right", grid: {drawOnChartArea: false}})}}});
  });
})();
