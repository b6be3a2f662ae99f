// Opens dragnet's report.html in Debian's headless Chromium, drives it as a person would and
// prints what it saw as JSON, for tests/it/report_html.rs to check against the fixture.
//
// Usage: node tests/browser/report.mjs REPORT.html SCREENSHOT.png PACKAGE TAG CVE
//   PACKAGE TAG: the image to drill into; CVE: a vulnerability to filter on.
// Chromium is /usr/bin/chromium (Debian's package; CHROMIUM overrides), driven through
// playwright-core from tools/node_modules, with a fresh profile and no network: every request
// the page makes is recorded and reported.

import { createRequire } from "node:module";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const tools = path.resolve(here, "../../tools");
const require = createRequire(path.join(tools, "package.json"));
const { chromium } = require("playwright-core");

const [reportPath, screenshotPath, pkg, tag, cve] = process.argv.slice(2);
if (!cve) {
  console.error("usage: report.mjs REPORT.html SCREENSHOT.png PACKAGE TAG CVE");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const profile = mkdtempSync(path.join(tmpdir(), "dragnet-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const seen = {};
try {
  const page = context.pages()[0] || (await context.newPage());
  const requests = [];
  const errors = [];
  page.on("request", (request) => requests.push(request.url()));
  page.on("pageerror", (error) => errors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });

  const url = pathToFileURL(path.resolve(reportPath)).href;
  await page.goto(url);
  await page.waitForSelector("#packages tbody tr");

  // The overview: header, totals, each package with its worst severity and tag chips.
  seen.title = await page.textContent("#title");
  seen.meta = await page.textContent("#meta");
  seen.cards = await page.$$eval(".card", (cards) =>
    Object.fromEntries(cards.map((c) => [c.dataset.card, Number(c.querySelector(".n").textContent)])));
  seen.packages = await page.$$eval("#packages tbody tr", (rows) => rows.map((row) => ({
    name: row.dataset.package,
    worst: row.querySelector(".sev").textContent,
    chips: [...row.querySelectorAll(".chip")].map((chip) => ({
      label: chip.textContent,
      tag: chip.dataset.tag,
      colour: [...chip.classList].find((c) => c !== "chip" && c !== "selected"),
    })),
  })));
  seen.failures = await page.$$eval(".failures li", (items) => items.map((li) => li.textContent));

  // The drill-down: click the tag's first chip, read the vulnerability table.
  const chip = page.locator(`tr[data-package="${pkg}"] .chip[data-tag="${tag}"]`).first();
  await chip.click();
  await page.waitForSelector("#cves tbody tr");
  const readRows = () => page.$$eval("#cves tbody tr[data-id]", (rows) => rows.map((row) => {
    const cells = [...row.querySelectorAll("td")];
    const link = cells[0].querySelector("a");
    return {
      id: cells[0].textContent,
      severity: cells[1].textContent,
      package: cells[2].firstChild ? cells[2].firstChild.textContent : "",
      installed: cells[3].textContent,
      fixed: cells[4].textContent,
      link: link ? link.getAttribute("href") : null,
    };
  }));
  seen.detailTitle = await page.textContent("#detail h2");
  seen.hash = await page.evaluate(() => location.hash);
  seen.rows = await readRows();

  // Sorting: by package, ascending then descending.
  await page.click('#cves th[data-key="package"]');
  seen.byPackage = (await readRows()).map((r) => r.package);
  await page.click('#cves th[data-key="package"]');
  seen.byPackageDescending = (await readRows()).map((r) => r.package);

  // Filtering the drill-down by a vulnerability id, then by severity.
  await page.fill("#cve-filter", cve);
  seen.filtered = await readRows();
  seen.filteredCount = await page.textContent("#cve-count");
  await page.fill("#cve-filter", "");
  await page.selectOption("#cve-severity", "CRITICAL");
  seen.criticalOnly = await readRows();
  await page.selectOption("#cve-severity", "");

  // Filtering the overview: the packages whose images have the vulnerability.
  await page.fill("#filter", cve);
  seen.packagesWithCve = await page.$$eval("#packages tbody tr", (rows) => rows.map((r) => r.dataset.package));
  await page.fill("#filter", "");
  await page.selectOption("#min-severity", "CRITICAL");
  seen.packagesCritical = await page.$$eval("#packages tbody tr", (rows) => rows.map((r) => r.dataset.package));
  await page.selectOption("#min-severity", "");

  // The picture for the docs: the overview with the drill-down open, sorted by severity.
  await page.click('#cves th[data-key="severity"]');
  await page.screenshot({ path: screenshotPath, fullPage: true });

  seen.requests = requests;
  seen.errors = errors;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(seen, null, 2) + "\n");
