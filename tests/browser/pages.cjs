// Drives Debian's Chromium through playwright-core over every dashboard page of a running
// Cartograph and prints one JSON report: per page its status, console errors, failed requests,
// dialogs (an executed alert() would show here), the texts asked for, and the map's SVG counts.
// Screenshots go to the directory given. Assertions live in the Rust test that runs this.
//
//   node pages.cjs BASE_URL SCREENSHOT_DIR PAGES_JSON
// PAGES_JSON: [{"path": "/", "name": "map", "texts": ["orders"], "focus": true}, ...]; a page
// with "fill" ({selector: value}) and "submit" (a selector) also submits that form; one with
// "click_path" (selectors) follows those links in turn and reports each page's URL and picked
// window; one with "picked": true reports the window its picker shows; one with
// "figures": true also reports every marked figure ([data-figure]) as {figure, subject, text},
// its subject from its own data-subject or its map group's (g.edge data-subject, g.node data-id);
// one with "charts": true reports every chart (svg.chart): ticks, unit, legend, hover titles,
// the bucket-in-progress marks, overlays and the smallest rendered text. "width" and "height"
// set the window (1500 x 950 otherwise).
// One with "tables": true reports every table under an h2 as {title, head, rows} (each cell
// {text, href}), before and after a submit; "check" (selectors) ticks boxes and "select"
// ({selector: value}) picks options before the submit, whose status and query it reports.

/** Every table that follows an h2: its title, column names and cells (text, link). */
function readTables() {
  return Array.from(document.querySelectorAll("h2")).map((heading) => {
    const table = heading.nextElementSibling;
    if (!table || table.tagName !== "TABLE") return { title: heading.textContent, head: [], rows: [] };
    return {
      title: heading.textContent,
      head: Array.from(table.querySelectorAll("thead th")).map((th) => ({
        text: th.textContent, href: th.querySelector("a") ? th.querySelector("a").getAttribute("href") : null,
      })),
      rows: Array.from(table.querySelectorAll("tbody tr")).map((tr) => Array.from(tr.querySelectorAll("td")).map((td) => ({
        text: td.textContent.trim(), href: td.querySelector("a") ? td.querySelector("a").getAttribute("href") : null,
      }))),
    };
  });
}

const { chromium } = require("playwright-core");

async function main() {
  const [base, shots, pagesJson] = process.argv.slice(2);
  const pages = JSON.parse(pagesJson);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const report = [];
  for (const spec of pages) {
    const context = await browser.newContext({ viewport: spec.viewport || { width: spec.width || 1500, height: spec.height || 950 } });
    const page = await context.newPage();
    const entry = { name: spec.name, path: spec.path, console_errors: [], failed_requests: [], dialogs: [], texts: {} };
    page.on("console", (message) => { if (message.type() === "error") entry.console_errors.push(message.text()); });
    page.on("pageerror", (error) => entry.console_errors.push(String(error)));
    page.on("requestfailed", (request) => entry.failed_requests.push(request.url()));
    page.on("response", (response) => {
      if (response.status() >= 400 && response.url() !== base + spec.path) entry.failed_requests.push(response.url() + " " + response.status());
    });
    page.on("dialog", async (dialog) => { entry.dialogs.push(dialog.message()); await dialog.dismiss(); });
    const response = await page.goto(base + spec.path, { waitUntil: "load" });
    entry.status = response ? response.status() : 0;
    // Parts a page loads after itself (htmx `load` triggers swap themselves out when they come).
    entry.parts_loaded = await page.waitForFunction(() => !document.querySelector("[hx-trigger='load']"), null, { timeout: 10000 })
      .then(() => true, () => false);
    if (spec.options) {
      entry.options = await page.evaluate((selector) => Array.from(document.querySelectorAll(selector + " option")).map((o) => o.textContent), spec.options);
    }
    const body = await page.evaluate(() => document.body.textContent);
    for (const text of spec.texts || []) { entry.texts[text] = body.includes(text); }
    entry.injected_images = await page.evaluate(() => document.querySelectorAll("img").length);
    entry.scripts = await page.evaluate(() => Array.from(document.scripts).map((s) => s.src));
    if (spec.map) {
      entry.map = await page.evaluate(() => ({
        nodes: Array.from(document.querySelectorAll("svg.map g.node")).map((g) => g.getAttribute("data-id")),
        edges: Array.from(document.querySelectorAll("svg.map g.edge")).map((g) => g.getAttribute("data-source") + " -> " + g.getAttribute("data-target")),
        edge_labels: Array.from(document.querySelectorAll("svg.map .edge-label")).map((t) => t.textContent),
      }));
    }
    if (spec.geometry) {
      // The map as drawn on screen: edges sampled along their paths against every box that is
      // not their end, shown labels against each other and against the boxes, the smallest
      // text, and whether the whole map fits the window.
      entry.geometry = await page.evaluate(() => {
        const svg = document.querySelector("svg.map");
        const inside = (x, y, r, inset) => x > r.left + inset && x < r.right - inset && y > r.top + inset && y < r.bottom - inset;
        const overlap = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 0.5 && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5;
        const nodes = Array.from(svg.querySelectorAll("g.node")).map((g) => ({ id: g.getAttribute("data-id"), shape: g.querySelector(".shape").getBoundingClientRect(), whole: g.getBoundingClientRect() }));
        const crossings = new Set();
        for (const g of svg.querySelectorAll("g.edge")) {
          const source = g.getAttribute("data-source"), target = g.getAttribute("data-target");
          const path = g.querySelector("path.line"), m = path.getScreenCTM(), length = path.getTotalLength();
          for (let i = 0; i <= 120; i++) {
            const p = path.getPointAtLength(length * i / 120);
            const x = m.a * p.x + m.c * p.y + m.e, y = m.b * p.x + m.d * p.y + m.f;
            for (const node of nodes) {
              if (node.id !== source && node.id !== target && inside(x, y, node.shape, 1)) { crossings.add(source + " -> " + target + " through " + node.id); }
            }
          }
        }
        const labels = Array.from(svg.querySelectorAll("g.label:not(.hover-only) .label-back")).map((back) => back.getBoundingClientRect());
        const label_overlaps = [], labels_on_nodes = [];
        labels.forEach((a, i) => labels.slice(i + 1).forEach((b) => { if (overlap(a, b)) { label_overlaps.push([a.left, a.top, b.left, b.top]); } }));
        labels.forEach((a) => nodes.forEach((node) => { if (overlap(a, node.whole)) { labels_on_nodes.push(node.id); } }));
        const shown = Array.from(svg.querySelectorAll("text")).filter((t) => t.getClientRects().length > 0);
        const sizes = shown.map((t) => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a);
        const box = svg.getBoundingClientRect();
        return {
          crossings: Array.from(crossings), label_overlaps, labels_on_nodes,
          num_labels: labels.length, num_hover_only: svg.querySelectorAll("g.label.hover-only").length,
          min_font_px: Math.min(...sizes),
          fits: box.bottom <= window.innerHeight && box.right <= window.innerWidth,
          all_nodes_in_view: nodes.every((node) => node.shape.left >= box.left - 1 && node.shape.right <= box.right + 1 && node.shape.top >= box.top - 1 && node.shape.bottom <= box.bottom + 1),
        };
      });
    }
    if (spec.search) {
      // Type into the map's Find box and report what it marks.
      await page.fill("#map-search", spec.search);
      entry.search = await page.evaluate(() => ({
        matches: Array.from(document.querySelectorAll("svg.map g.node.match")).map((g) => g.getAttribute("data-id")),
        searching: document.querySelector("svg.map").classList.contains("searching"),
        groups: document.querySelectorAll("svg.map g.node.kind-group").length,
      }));
    }
    if (spec.figures) {
      entry.figures = await page.evaluate(() => Array.from(document.querySelectorAll("[data-figure]")).map((element) => {
        const group = element.closest("g.node, g.edge");
        const subject = element.getAttribute("data-subject")
          || (group && (group.getAttribute("data-subject") || group.getAttribute("data-id")));
        return { figure: element.getAttribute("data-figure"), subject, text: element.textContent };
      }));
    }
    if (spec.charts) {
      // Every chart (svg.chart): its axes, unit, legend, hover titles, marks, and the smallest
      // text as rendered on screen (font size times the SVG's scale).
      entry.charts = await page.evaluate(() => Array.from(document.querySelectorAll("svg.chart")).map((svg) => {
        const texts = (selector) => Array.from(svg.querySelectorAll(selector)).map((t) => t.textContent);
        const scale = svg.getScreenCTM() ? svg.getScreenCTM().a : 0;
        const sizes = Array.from(svg.querySelectorAll("text")).map((t) => parseFloat(getComputedStyle(t).fontSize) * scale);
        return {
          kind: svg.classList.contains("timeline") ? "timeline" : "line",
          title: svg.getAttribute("aria-label"),
          unit: svg.getAttribute("data-unit"),
          unit_label: texts("text.unit")[0] || null,
          ticks_x: texts("text.tick-x"),
          ticks_y: texts("text.tick-y"),
          legend: texts(".legend text"),
          hovers: texts("rect.hover > title, rect.band > title"),
          bands: Array.from(svg.querySelectorAll("rect.band")).map((r) => r.getAttribute("data-state")),
          partial: svg.querySelectorAll("rect.partial").length,
          in_progress: svg.querySelectorAll(".in-progress").length,
          overlay: Array.from(svg.querySelectorAll("g.overlay")).map((g) => g.getAttribute("data-name")),
          min_text_px: sizes.length ? Math.min(...sizes) : null,
          width_px: svg.getBoundingClientRect().width,
        };
      }));
    }
    if (spec.selected) {
      // The text of every element each selector matches (a `g` includes its `<title>`).
      entry.selected = {};
      for (const selector of spec.selected) {
        entry.selected[selector] = await page.evaluate((s) => Array.from(document.querySelectorAll(s)).map((e) => e.textContent), selector);
      }
    }
    if (spec.tables) { entry.tables = await page.evaluate(readTables); }
    await page.screenshot({ path: shots + "/" + spec.name + ".png", fullPage: spec.full_page === true });
    if (spec.fill) {
      // Fill a form, submit it, and report the page it leads to.
      for (const [selector, value] of Object.entries(spec.fill)) { await page.fill(selector, value); }
      for (const selector of spec.check || []) { await page.check(selector); }
      for (const [selector, value] of Object.entries(spec.select || {})) { await page.selectOption(selector, value); }
      const [submitted] = await Promise.all([page.waitForNavigation(), page.click(spec.submit)]);
      const after = await page.evaluate(() => document.body.textContent);
      const url = new URL(page.url());
      entry.after_submit = {
        path: url.pathname,
        search: url.search,
        status: submitted ? submitted.status() : 0,
        texts: Object.fromEntries((spec.after_texts || []).map((text) => [text, after.includes(text)])),
        injected_images: await page.evaluate(() => document.querySelectorAll("img").length),
      };
      if (spec.tables) { entry.after_submit.tables = await page.evaluate(readTables); }
      await page.screenshot({ path: shots + "/" + spec.name + "-after.png", fullPage: true });
    }
    if (spec.click_path) {
      // Follow links by selector, one page after another: where each leads and what its time
      // picker shows.
      entry.click_path = [];
      for (const selector of spec.click_path) {
        await Promise.all([page.waitForNavigation(), page.click(selector)]);
        const url = new URL(page.url());
        entry.click_path.push({
          path: url.pathname,
          search: url.search,
          heading: await page.evaluate(() => {
            const heading = document.querySelector("h2");
            return heading ? heading.textContent : null;
          }),
          // What the map marks (an audit finding's subjects): nodes and "source -> target" edges.
          marked: await page.evaluate(() => ({
            nodes: Array.from(document.querySelectorAll("svg.map g.node.match")).map((g) => g.getAttribute("data-id")),
            edges: Array.from(document.querySelectorAll("svg.map g.edge.match")).map((g) => g.getAttribute("data-source") + " -> " + g.getAttribute("data-target")),
            dimming: Boolean(document.querySelector("svg.map.searching")),
          })),
          picked: await page.evaluate(() => {
            const option = document.querySelector("select[name=window] option:checked");
            return option ? option.textContent : null;
          }),
        });
      }
    }
    if (spec.picked) {
      entry.picked = await page.evaluate(() => {
        const option = document.querySelector("select[name=window] option:checked");
        return option ? option.textContent : null;
      });
    }
    if (spec.click_first_node) {
      await Promise.all([page.waitForNavigation(), page.click("svg.map g.node[data-id='" + spec.click_first_node + "']")]);
      entry.after_click = new URL(page.url()).pathname;
    }
    report.push(entry);
    await context.close();
  }
  await browser.close();
  process.stdout.write(JSON.stringify(report));
}

main().catch((error) => { process.stderr.write(String(error && error.stack || error)); process.exit(1); });
