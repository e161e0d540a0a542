// The browser check: opens each fixture page (written by `cargo test --test html -- --ignored
// write_the_pages_for_the_browser_check`) in headless Chromium, offline, and asserts from the rendered DOM what a
// person sees: what needs attention first, the counts, a filter narrowing the list, the expiry timeline's marks
// where the dates put them, the page working without JavaScript and from a blob URL, and no request but the
// page itself. A screenshot of each page is kept beside it.
//
// Usage: node tests/browser/check.mjs PAGES_DIR NODE_MODULES_PARENT
//   PAGES_DIR            target/pages (the pages, their documents and expect.json)
//   NODE_MODULES_PARENT  the folder where `npm ci` installed playwright-core (target/browser-check)
// Env: CHROMIUM (default /usr/bin/chromium).

import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [pagesDir, modulesDir] = process.argv.slice(2);
if (!pagesDir || !modulesDir) {
  console.error("usage: node tests/browser/check.mjs PAGES_DIR NODE_MODULES_PARENT");
  process.exit(1);
}
const require = createRequire(path.join(path.resolve(modulesDir), "package.json"));
const { chromium } = require("playwright-core");

const expectations = JSON.parse(fs.readFileSync(path.join(pagesDir, "expect.json"), "utf8")).pages;
let passed = 0;
let failed = 0;

function check(what, ok, detail) {
  if (ok) {
    passed += 1;
    console.log(`ok - ${what}`);
  } else {
    failed += 1;
    console.log(`FAIL - ${what}${detail === undefined ? "" : `: ${detail}`}`);
  }
}

// Playwright gives every launch a fresh, temporary profile (its own --user-data-dir).
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

/// Opens a page offline, recording every request it makes, every console error and any dialog.
async function open(name, { javaScript = true, viaBlob = false, height = 900 } = {}) {
  const file = path.resolve(pagesDir, `${name}.html`);
  const url = pathToFileURL(file).href;
  const context = await browser.newContext({
    viewport: { width: 1280, height },
    javaScriptEnabled: javaScript,
    offline: true,
    serviceWorkers: "block",
  });
  const requests = [];
  const problems = [];
  context.on("request", (request) => requests.push(request.url()));
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(String(error)));
  page.on("dialog", async (dialog) => {
    problems.push(`a dialog opened: ${dialog.message()}`);
    await dialog.dismiss();
  });
  let own = [url];
  if (viaBlob) {
    // As a notification's link or a browser extension would: the page's text as a blob, opened from a blank page.
    await page.goto("about:blank");
    const html = fs.readFileSync(file, "utf8");
    const [blobUrl] = await Promise.all([
      page.waitForURL(/^blob:/).then(() => page.url()),
      page.evaluate((text) => {
        location.href = URL.createObjectURL(new Blob([text], { type: "text/html" }));
      }, html),
    ]);
    await page.waitForLoadState("load");
    own = ["about:blank", blobUrl];
  } else {
    await page.goto(url, { waitUntil: "load" });
  }
  return { context, page, own, requests, problems };
}

/// Fails on any request but the page itself, and on any console error (a blocked style or script shows there).
function checkQuiet(label, opened) {
  const foreign = opened.requests.filter((u) => !opened.own.includes(u));
  check(`${label}: made no request but the page itself`, foreign.length === 0, foreign.join(", "));
  check(`${label}: no console error, script error or dialog`, opened.problems.length === 0, opened.problems.join(" | "));
}

async function checkStyledAndScripted(label, page) {
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check(`${label}: the inline style applies`, background === "rgb(246, 247, 249)", background);
  check(`${label}: the inline script ran (the filter bar shows)`, await page.locator("div.filters").first().isVisible());
}

async function countVisible(page, selector) {
  return page.evaluate(
    (s) => Array.from(document.querySelectorAll(s)).filter((e) => e.getClientRects().length > 0).length,
    selector,
  );
}

async function checkCounts(label, page, counts) {
  for (const [key, value] of Object.entries(counts)) {
    const shown = (await page.locator(`[data-count="${key}"] dd`).innerText()).trim();
    check(`${label}: the summary shows ${key} = ${value}`, shown === String(value), shown);
  }
}

/// Chooses each filter's value, counts the items a person can still see, then puts the filter back.
async function checkFilters(label, page, group, filters, total) {
  const bar = page.locator(`div.filters[data-for="${group}"]`);
  for (const f of filters) {
    await bar.locator(`select[name="${f.select}"]`).selectOption(f.value);
    const visible = await countVisible(page, `[data-group="${group}"]`);
    const shown = (await bar.locator(".shown").innerText()).trim();
    check(
      `${label}: choosing ${f.select} = ${f.value} leaves ${f.visible} visible`,
      visible === f.visible && shown === String(f.visible),
      `visible ${visible}, "Showing ${shown}"`,
    );
    await bar.locator(`select[name="${f.select}"]`).selectOption("");
  }
  const all = await countVisible(page, `[data-group="${group}"]`);
  check(`${label}: "all" shows every item again`, all === total, `${all} of ${total}`);
}

async function checkReport(e) {
  const label = e.name;
  const started = Date.now();
  const opened = await open(e.name);
  const { page } = opened;
  check(`${label}: loads`, true, `${Date.now() - started} ms`);
  await checkStyledAndScripted(label, page);
  await checkCounts(label, page, e.counts);

  // Attention first: the cards in order, each above everything else.
  const cards = await page.evaluate(() =>
    Array.from(document.querySelectorAll('#attention article[data-group="targets"]')).map((card) => ({
      name: card.querySelector("h3").childNodes[0].textContent.trim(),
      top: card.getBoundingClientRect().top,
      visible: card.getClientRects().length > 0,
      fixSteps: card.querySelectorAll("ol.fix li").length,
    })),
  );
  check(
    `${label}: the targets needing attention come first, soonest next run first`,
    JSON.stringify(cards.map((c) => c.name)) === JSON.stringify(e.attention),
    JSON.stringify(cards.map((c) => c.name)),
  );
  const restTop = await page.evaluate(() => {
    const rest = document.querySelector("#rest");
    return rest ? rest.getBoundingClientRect().top : Infinity;
  });
  check(`${label}: every attention card is visible and above the rest`, cards.every((c) => c.visible && c.top < restTop));
  if (e.attention.length > 0) {
    check(`${label}: the attention cards carry numbered fix steps`, cards.some((c) => c.fixSteps > 0));
    const blast = await page.locator("#attention .impact").first().innerText();
    check(`${label}: the first card says what breaks and when`, /breaks \d+ pipelines?; /.test(blast), blast);
  }
  const hostile = await page.evaluate(() => document.body.innerText.includes('ls_<script>alert("pwned")</script>'));
  if (label === "report") {
    check(`${label}: the hostile name shows as text`, hostile);
  }
  await checkFilters(label, page, "targets", e.filters, e.targets);
  if (await page.locator("#rest table.sortable").count()) {
    const names = () => page.evaluate(() =>
      Array.from(document.querySelectorAll("#rest tbody tr")).map((row) => row.cells[0].textContent.trim()),
    );
    const before = await names();
    const byName = [...before].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    await page.locator("#rest th", { hasText: "Target" }).click();
    const ascending = await names();
    await page.locator("#rest th", { hasText: "Target" }).click();
    const descending = await names();
    check(
      `${label}: a click on "Target" sorts the table, a second click reverses it`,
      JSON.stringify(ascending) === JSON.stringify(byName) &&
        JSON.stringify(descending) === JSON.stringify([...byName].reverse()),
      JSON.stringify({ ascending, descending }),
    );
  }
  checkQuiet(label, opened);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(pagesDir, `${e.name}.png`), fullPage: true });
  await opened.context.close();

  // Without JavaScript: every target and its fix steps are there; only the filters are gone.
  const plain = await open(e.name, { javaScript: false });
  const targets = await countVisible(plain.page, '[data-group="targets"]');
  check(`${label} without JavaScript: every target shows`, targets === e.targets, `${targets} of ${e.targets}`);
  check(`${label} without JavaScript: the filter bar stays hidden`, !(await plain.page.locator("div.filters").first().isVisible().catch(() => false)));
  if (e.attention.length > 0) {
    check(`${label} without JavaScript: fix steps show`, (await countVisible(plain.page, "#attention ol.fix li")) > 0);
  }
  checkQuiet(`${label} without JavaScript`, plain);
  await plain.context.close();

  // From a blob URL: styled, scripted, and quiet.
  const blob = await open(e.name, { viaBlob: true });
  const heading = await blob.page.locator("h1").innerText();
  check(`${label} from a blob URL: shows its heading`, heading.length > 0, heading);
  await checkStyledAndScripted(`${label} from a blob URL`, blob.page);
  checkQuiet(`${label} from a blob URL`, blob);
  await blob.context.close();
}

async function checkInventory(e) {
  const label = e.name;
  const large = e.secrets >= 500;
  const started = Date.now();
  const opened = await open(e.name, { height: large ? 1600 : 900 });
  const { page } = opened;
  check(`${label}: loads`, true, `${Date.now() - started} ms`);
  await checkStyledAndScripted(label, page);
  await checkCounts(label, page, e.counts);
  const secrets = await countVisible(page, '[data-group="secrets"]');
  check(`${label}: every secret shows`, secrets === e.secrets, `${secrets} of ${e.secrets}`);
  const consumers = await countVisible(page, "table.consumers tbody tr");
  check(`${label}: every consumer shows in its secret's table`, consumers === e.consumers, `${consumers} of ${e.consumers}`);

  // The timeline: the scale from the labelled ticks a person reads ("today", "+30 d"), then each mark.
  const drawing = await page.evaluate(() => {
    const centre = (el) => {
      const r = el.getBoundingClientRect();
      return { x: r.left + r.width / 2, left: r.left, right: r.right };
    };
    const ticks = Array.from(document.querySelectorAll("#timeline text.tick-label")).map((t) => {
      const text = t.textContent.trim();
      const days = text === "today" ? 0 : Number(text.replace("−", "-").replace(/[^0-9-]/g, ""));
      return { days, x: centre(t).x };
    });
    const zones = {};
    for (const rect of document.querySelectorAll("#timeline rect.zone")) {
      const kind = Array.from(rect.classList).find((c) => c.startsWith("zone-"));
      (zones[kind] = zones[kind] || []).push(centre(rect));
    }
    const marks = Array.from(document.querySelectorAll("#timeline circle.mark")).map((m) => ({
      title: m.querySelector("title").textContent,
      x: centre(m).x,
      fill: getComputedStyle(m).fill,
    }));
    return { ticks, zones, marks };
  });
  const tick = (d) => drawing.ticks.find((t) => t.days === d);
  const today = tick(0);
  const month = tick(30);
  const past = Math.min(...drawing.ticks.map((t) => t.days));
  const last = Math.max(...drawing.ticks.map((t) => t.days));
  check(`${label}: the timeline has an axis from today`, today && month, JSON.stringify(drawing.ticks));
  const perDay = (month.x - today.x) / 30;
  const fills = { expired: "rgb(109, 27, 22)", critical: "rgb(179, 38, 30)", warning: "rgb(217, 131, 0)", ok: "rgb(30, 123, 52)" };
  const zoneOf = { expired: "zone-expired", critical: "zone-critical", warning: "zone-warning" };
  const misplaced = [];
  for (const m of e.marks) {
    const mark = drawing.marks.find((d) => d.title.startsWith(`${m.secret}: `));
    if (!mark) {
      misplaced.push(`${m.secret}: no mark`);
      continue;
    }
    if (m.days < past) {
      if (!(mark.x < tick(past).x)) misplaced.push(`${m.secret}: expired ${-m.days} days ago, not left of ${past} d`);
    } else if (m.days > last) {
      if (!(mark.x > tick(last).x)) misplaced.push(`${m.secret}: in ${m.days} days, not right of +${last} d`);
    } else {
      const expected = today.x + m.days * perDay;
      if (Math.abs(mark.x - expected) > 1.5) misplaced.push(`${m.secret}: at x ${mark.x.toFixed(1)}, its date says ${expected.toFixed(1)}`);
      const zone = zoneOf[m.zone];
      if (zone && !(drawing.zones[zone] || []).some((z) => mark.x >= z.left - 0.5 && mark.x <= z.right + 0.5)) {
        misplaced.push(`${m.secret}: ${m.zone}, but not over the shaded ${zone}`);
      }
    }
    if (mark.fill !== fills[m.zone]) misplaced.push(`${m.secret}: coloured ${mark.fill}, not as ${m.zone}`);
  }
  check(
    `${label}: ${e.marks.length} timeline marks sit where their dates say, over the right shading`,
    misplaced.length === 0 && drawing.marks.length === e.marks.length,
    `${drawing.marks.length} marks; ${misplaced.slice(0, 5).join("; ")}`,
  );
  await checkFilters(label, page, "secrets", e.filters, e.secrets);
  checkQuiet(label, opened);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(pagesDir, `${e.name}.png`), fullPage: !large });
  await opened.context.close();

  const plain = await open(e.name, { javaScript: false });
  const marks = await countVisible(plain.page, "#timeline circle.mark");
  check(`${label} without JavaScript: the timeline and every secret show`, marks === e.marks.length && (await countVisible(plain.page, '[data-group="secrets"]')) === e.secrets);
  checkQuiet(`${label} without JavaScript`, plain);
  await plain.context.close();
}

try {
  for (const e of expectations) {
    if (e.kind === "report") await checkReport(e);
    else await checkInventory(e);
  }
} catch (error) {
  check("the browser check ran to its end", false, error && error.stack ? error.stack : String(error));
} finally {
  await browser.close();
}
console.log(`screenshots: ${path.resolve(pagesDir)}/*.png`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
