// Browser test of the web console: playwright-core drives Debian's
// chromium against a real `bridge run` on 127.0.0.1. Every request to an
// address other than the loopback is aborted and counted; the run fails if
// a page tried one, logged a script error, or broke the Content-Security-
// Policy. Screenshots of each page in light and dark mode go to SHOT_DIR.
//
// Env: BASE_URL, ADMIN_TOKEN, READER_TOKEN, SHOT_DIR, PLAYWRIGHT_DIR,
// CHROMIUM. Prints one JSON line with the results; exit 1 on failure.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import os from "node:os";

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const base = env("BASE_URL");
const require = createRequire(path.join(env("PLAYWRIGHT_DIR"), "package.json"));
const { chromium } = require("playwright-core");
const shotDir = env("SHOT_DIR");
fs.mkdirSync(shotDir, { recursive: true });

const blocked = [];
const problems = [];
const steps = [];
const loopback = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

function check(cond, msg) { if (!cond) throw new Error(msg); }

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "bridge-console-chromium-"));
// A fresh --user-data-dir per run (playwright passes userDataDir as that flag).
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: env("CHROMIUM"), headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-quic", "--no-first-run", "--disable-default-apps"],
  viewport: { width: 1360, height: 900 }, acceptDownloads: true, colorScheme: "light",
});
await context.route("**/*", (route) => {
  const url = new URL(route.request().url());
  if (url.protocol === "data:" || loopback.has(url.hostname)) return route.continue();
  blocked.push(url.href);
  return route.abort("blockedbyclient");
});
const page = context.pages()[0] || await context.newPage();
page.on("pageerror", (e) => problems.push("page error: " + e.message));
let expectForbidden = false; // the consumer step provokes a 403 on purpose
page.on("console", (m) => {
  if (m.type() !== "error") return;
  if (expectForbidden && m.text().includes("status of 403")) return;
  problems.push("console error: " + m.text());
});

async function shoot(name) {
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.waitForTimeout(150);
    await page.screenshot({ path: path.join(shotDir, `${name}-${scheme}.png`), fullPage: false });
  }
  await page.emulateMedia({ colorScheme: "light" });
}

async function step(name, fn) {
  const t0 = Date.now();
  await fn();
  steps.push({ name, ms: Date.now() - t0 });
}

async function login(token) {
  await page.goto(base + "/console/");
  check(page.url().includes("/console/login"), "not sent to the login form: " + page.url());
  await page.fill("#token", token);
  await Promise.all([page.waitForURL(base + "/console/"), page.click("button[type=submit]")]);
}

async function logout() {
  await Promise.all([page.waitForURL(/\/console\/login/), page.click("header form button")]);
}

let exitCode = 0;
try {
  await step("consumer is read-only", async () => {
    await login(env("READER_TOKEN"));
    const who = await page.textContent("#who");
    check(who.startsWith("consumer:"), "who: " + who);
    check(await page.locator("header .badge", { hasText: "read-only" }).count() === 1, "no read-only badge");
    await page.goto(base + "/console/queues/work-dlq");
    check(await page.locator("#preview-redrive").count() === 0, "a consumer sees the redrive button");
    expectForbidden = true;
    const status = await page.evaluate(async () => (await fetch("/console/queues/work-dlq/redrive/preview", { method: "POST" })).status);
    expectForbidden = false;
    check(status === 403, "a consumer's redrive preview answered " + status);
    await logout();
  });

  await step("overview live over SSE", async () => {
    await login(env("ADMIN_TOKEN"));
    const first = await page.textContent("#cards .muted");
    await page.waitForFunction((f) => document.querySelector("#cards .muted").textContent !== f, first, { timeout: 10000 });
    const nodes = await page.locator("svg.topology g.node").count();
    check(nodes >= 4, "topology nodes: " + nodes);
    await page.waitForSelector("#live-chart[data-ready='1'] .uplot", { timeout: 10000 });
    await shoot("overview");
  });

  await step("topics: search, browse, filter, mask, tail, export", async () => {
    await page.goto(base + "/console/topics");
    await page.fill("input[name=q]", "ord");
    await Promise.all([page.waitForURL(/q=ord/), page.click("form.inline button")]);
    check(await page.locator("table.topics tbody tr").count() === 2, "search for ord");
    await shoot("topics");
    await page.click("table.topics a:text-is('orders')");
    await page.waitForSelector("table#browse tbody tr");
    await page.fill("input[name=filter]", 'body.region == "eu"');
    await Promise.all([page.waitForURL(/filter=/), page.click("form.inline button[type=submit]")]);
    const values = await page.locator("table#browse pre.value").allTextContents();
    check(values.length > 0 && values.every((v) => v.includes('"eu"')), "filtered values: " + values.length);
    check(!(await page.content()).includes("4111"), "an unmasked card number is on the page");
    await page.waitForFunction(() => document.querySelector("#tail") !== null);
    await page.waitForTimeout(700); // the tail stream is open
    const posted = await page.evaluate(async (tok) => (await fetch("/v1/topics/orders/events", {
      method: "POST", headers: { Authorization: "Bearer " + tok, "Content-Type": "application/json" },
      body: JSON.stringify([{ key: "live-1", value: { type: "order.created", region: "eu", amount: 3, card: "4111-live" } }]),
    })).status, env("ADMIN_TOKEN"));
    check(posted === 200, "post for the tail: " + posted);
    await page.waitForSelector("#tail-rows tr", { timeout: 10000 });
    const tail = await page.textContent("#tail-rows");
    check(tail.includes("live-1") && !tail.includes("4111"), "tail row: " + tail.slice(0, 200));
    await shoot("topic");
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-partition")]);
    const file = await download.path();
    const lines = fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    check(lines.length > 0 && lines.every((l) => l.value.region === "eu" && l.value.card === "***"), "export: " + JSON.stringify(lines[0]));
  });

  await step("queues: DLQ grouped, preview, confirm, paced redrive, audit", async () => {
    await page.goto(base + "/console/queues");
    await shoot("queues");
    await page.goto(base + "/console/queues/work-dlq");
    const groups = await page.locator("table.groups tbody tr").count();
    check(groups === 1, "groups: " + groups);
    await page.fill("input[name=rate]", "20");
    await page.click("#preview-redrive");
    await page.waitForSelector("#redrive-preview");
    const total = await page.textContent("#preview-total");
    check(total === "6", "preview total " + total);
    await shoot("queue-dlq");
    await page.fill("#redrive-preview input[name=confirm]", "work-dlq");
    await Promise.all([page.waitForURL(/\/console\/jobs\//), page.click("#confirm-redrive")]);
    await page.waitForFunction(() => document.querySelector("#job-state")?.textContent === "done", null, { timeout: 15000 });
    check((await page.textContent("#job-done")) === "6", "job moved " + (await page.textContent("#job-done")));
    await shoot("job");
    await page.goto(base + "/console/deadletters");
    await shoot("deadletters");
  });

  await step("pipelines: playground and replay", async () => {
    await page.goto(base + "/console/pipelines");
    await shoot("pipelines");
    await page.click("table.pipelines a:text-is('orders-to-work')");
    await page.fill("#playground-value", '{"type":"order.created","region":"eu","amount":150,"card":"4111"}');
    await page.click("#run-playground");
    await page.waitForSelector("#decisions");
    const sel = await page.getAttribute("#decisions tbody tr", "data-selected");
    check(sel === "true", "playground decision " + sel);
    await page.selectOption("select[name=from]", "earliest");
    await page.click("#preview-replay");
    await page.waitForSelector("#replay-preview");
    await shoot("pipeline");
    await page.fill("#replay-preview input[name=confirm]", "orders-to-work");
    await Promise.all([page.waitForURL(/\/console\/pipelines\/orders-to-work$/), page.click("#confirm-replay")]);
  });

  await step("journey", async () => {
    await page.goto(base + "/console/journey?id=orders/0/0");
    await page.waitForSelector(".journey-route");
    const status = await page.getAttribute(".journey-route", "data-status");
    check(["delivered", "not selected", "dead-lettered"].includes(status) || status.startsWith("pending"), "journey status " + status);
    await shoot("journey");
  });

  await step("history and audit", async () => {
    await page.goto(base + "/console/history");
    await page.waitForFunction(() => [...document.querySelectorAll("[data-chart]")].every((e) => e.dataset.ready), null, { timeout: 10000 });
    check(await page.locator("[data-chart][data-ready='error']").count() === 0, "a history chart failed");
    await shoot("history");
    await page.goto(base + "/console/audit");
    const rows = await page.locator("table.audit tbody tr").allTextContents();
    check(rows.some((r) => r.includes("redrive.queue") && r.includes("done")) && rows.some((r) => r.includes("replay")), "audit rows: " + rows.length);
    await shoot("audit");
  });
} catch (e) {
  problems.push(String(e && e.stack || e));
}
await context.close();
fs.rmSync(userDataDir, { recursive: true, force: true });
if (blocked.length > 0) problems.push(`${blocked.length} non-loopback requests blocked: ${blocked.slice(0, 5).join(", ")}`);
if (problems.length > 0) exitCode = 1;
console.log(JSON.stringify({ blocked: blocked.length, blockedURLs: blocked.slice(0, 20), problems, steps }));
process.exit(exitCode);
