// Opens an HTML report in headless Chromium (the system's /usr/bin/chromium, driven by
// playwright-core) and prints, as JSON: console errors and page errors, requests that left the
// file (a report must work offline), and what every Chart.js chart on the page holds.
//
//   node render.js file:///path/report.html screenshot.png
const { chromium } = require("playwright-core");

(async () => {
  const [url, screenshot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--no-first-run"],
  });
  const result = { console: [], pageErrors: [], requests: [] };
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on("console", (msg) => result.console.push({ type: msg.type(), text: msg.text() }));
    page.on("pageerror", (err) => result.pageErrors.push(String(err)));
    page.on("request", (req) => { if (!req.url().startsWith("file:") && !req.url().startsWith("data:")) result.requests.push(req.url()); });
    await page.goto(url, { waitUntil: "load" });
    result.title = await page.title();
    result.charts = await page.evaluate(() => Array.from(document.querySelectorAll("canvas")).map((canvas) => {
      const chart = typeof Chart === "undefined" ? null : Chart.getChart(canvas);
      return {
        id: canvas.id,
        width: canvas.width,
        height: canvas.height,
        drawn: !!chart,
        type: chart ? chart.config.type : null,
        labels: chart ? chart.data.labels || null : null,
        datasets: chart ? chart.data.datasets.map((d) => ({ label: d.label, data: d.data })) : [],
        // a rendered canvas has non-blank pixels
        inked: (() => {
          const ctx = canvas.getContext("2d");
          const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
          let inked = 0;
          for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) inked++;
          return inked;
        })(),
      };
    }));
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(result));
})().catch((err) => { process.stderr.write(String(err && err.stack || err) + "\n"); process.exit(1); });
