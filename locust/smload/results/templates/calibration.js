// Calibration report: three charts drawn from the steps in the embedded calibration.json.
(function () {
  const steps = REPORT.steps.filter((s) => s.requests > 0);
  const byUsers = [...steps].sort((a, b) => a.users - b.users || a.index - b.index);
  const knee = REPORT.knee;
  const maxRps = Math.max(1, ...steps.map((s) => s.rps));
  const percentiles = [["p50", "p50_ms"], ["p90", "p90_ms"], ["p95", "p95_ms"], ["p99", "p99_ms"]];
  // The latency axis follows the data; an SLO far above it (> 3x) would flatten every curve, so it
  // is then left above the chart and said so in its label.
  const maxP99 = Math.max(1, ...steps.map((s) => s.p99_ms || 0));
  const shownSlos = REPORT.slo.filter((o) => o.threshold_ms && o.threshold_ms <= 3 * maxP99).map((o) => o.threshold_ms);
  const maxLatency = Math.max(maxP99, ...shownSlos) * 1.1;
  const tooltip = {callbacks: {footer: (items) => {
    const raw = items[0] && items[0].raw;
    return raw && raw.users ? `step ${raw.step}: ${raw.users} users` : "";
  }}};

  // 1. Latency percentiles against achieved throughput; SLO thresholds and the knee marked.
  const latency = percentiles.map(([label, key], i) => line(label,
    byUsers.map((s) => ({x: s.rps, y: s[key], users: s.users, step: s.index})), COLORS[i]));
  REPORT.slo.filter((o) => o.threshold_ms && !o.name).forEach((o) => latency.push(line(
    `SLO ${o.text}` + (o.threshold_ms > maxLatency ? " (above the chart)" : ""),
    [{x: 0, y: o.threshold_ms}, {x: maxRps * 1.05, y: o.threshold_ms}], COLORS[3],
    {borderDash: [6, 4], pointRadius: 0, borderWidth: 1.5})));
  if (knee) {
    latency.push(line(`knee (${knee.users} users)`, [{x: knee.rps, y: 0}, {x: knee.rps, y: maxLatency}],
      COLORS[5], {borderDash: [2, 3], pointRadius: 0, borderWidth: 2}));
  }
  chart("latency-vs-throughput", {type: "scatter", data: {datasets: latency}, options: {plugins: {tooltip},
    scales: {x: axis("achieved throughput (req/s)"), y: axis("latency (ms)", {max: Math.ceil(maxLatency)})}}});

  // 2. Throughput against users, with the linear ideal of the best per-user throughput.
  const perUser = Math.max(0, ...steps.filter((s) => s.verdict === "ok").map((s) => s.rps / s.users));
  const maxUsers = Math.max(1, ...steps.map((s) => s.users));
  const throughput = [
    line("achieved req/s", byUsers.map((s) => ({x: s.users, y: s.rps, users: s.users, step: s.index})), COLORS[0],
      {pointBackgroundColor: byUsers.map((s) => (s.verdict === "ok" ? COLORS[2] : COLORS[3])), pointRadius: 4}),
    line("linear (no queueing)", [{x: 0, y: 0}, {x: maxUsers, y: perUser * maxUsers}], COLORS[7],
      {borderDash: [4, 4], pointRadius: 0, borderWidth: 1}),
  ];
  if (knee) {
    throughput.push(line(`knee (${knee.users} users)`, [{x: knee.users, y: 0}, {x: knee.users, y: maxRps * 1.05}],
      COLORS[5], {borderDash: [2, 3], pointRadius: 0}));
  }
  chart("throughput-vs-users", {type: "scatter", data: {datasets: throughput},
    options: {plugins: {tooltip}, scales: {x: axis("concurrent users"), y: axis("req/s")}}});

  // 3. The schedule: users per step (a staircase), and what each step's window measured.
  const ordered = [...REPORT.steps].sort((a, b) => a.index - b.index);
  const stairs = [];
  ordered.forEach((s, i) => {
    const end = i + 1 < ordered.length ? ordered[i + 1].started_s : s.window_s[1];
    stairs.push({x: s.started_s, y: s.users, users: s.users, step: s.index}, {x: end, y: s.users, users: s.users, step: s.index});
  });
  const mid = (s) => (s.window_s[0] + s.window_s[1]) / 2;
  chart("steps-over-time", {type: "scatter", data: {datasets: [
    line("users", stairs, COLORS[7], {pointRadius: 0, yAxisID: "users"}),
    line("req/s (measured window)", ordered.map((s) => ({x: mid(s), y: s.rps, users: s.users, step: s.index})), COLORS[0], {yAxisID: "rps"}),
    line("p99 ms", ordered.map((s) => ({x: mid(s), y: s.p99_ms, users: s.users, step: s.index})), COLORS[3], {yAxisID: "ms"}),
  ]}, options: {plugins: {tooltip}, scales: {
    x: axis("seconds since the start"),
    users: axis("users", {position: "left"}),
    rps: axis("req/s", {position: "right", grid: {drawOnChartArea: false}}),
    ms: axis("p99 ms", {position: "right", grid: {drawOnChartArea: false}}),
  }}});

  // 4. LLM endpoints: total output tokens/s against tokens/s per user (the serving trade-off curve).
  if (REPORT.llm && document.getElementById("tokens-tradeoff")) {
    const curve = REPORT.llm.curve;
    chart("tokens-tradeoff", {type: "scatter", data: {datasets: [
      line("steps (users)", curve.map((p) => ({x: p.per_user_tokens_per_s, y: p.output_tokens_per_s, users: p.users})),
        COLORS[0], {pointBackgroundColor: curve.map((p) => (p.good ? COLORS[2] : COLORS[3])), pointRadius: 4}),
    ]}, options: {plugins: {tooltip: {callbacks: {footer: (items) => {
      const raw = items[0] && items[0].raw;
      return raw ? `${raw.users} users` : "";
    }}}}, scales: {x: axis("output tokens/s per user"), y: axis("total output tokens/s")}}});
  }
})();
