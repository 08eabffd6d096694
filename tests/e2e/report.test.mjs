// `kotae report --format html` on the journal of the bundled demo stream (a real `kotae demo`,
// with questions answered through the API), opened in headless Chromium and printed on A4.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, KOTAE, workspace, browser, shotDir } from "./harness.mjs";

let ws, b, html, json;

/// Runs `kotae demo` until it says it is still serving, answers two questions (one with a
/// text) through the API, then stops it with SIGTERM so the journal is complete.
function demo(ws) {
  return new Promise((ok, fail) => {
    const child = spawn(KOTAE, ["--config", ws.config, "demo", "--listen", "127.0.0.1:0"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "", addr = null, done = false;
    const timer = setTimeout(() => fail(new Error(`kotae demo did not finish:\n${out}\n${err}`)), 120000);
    child.stderr.on("data", (d) => { err += d; });
    child.stdout.on("data", async (d) => {
      out += d;
      addr = addr || (out.match(/listening on http:\/\/([\d.:]+)/) || [])[1];
      if (done || !addr || !out.includes("still serving")) return;
      done = true;
      try {
        const base = `http://${addr}/v1/streams/demo`;
        const list = await (await fetch(`${base}/questions`)).json();
        const post = (id, body) => fetch(`${base}/questions/${id}/answered`, { method: "POST", headers: { "Content-Type": "application/json" }, body });
        assert.equal((await post(list.questions[0].id, JSON.stringify({ answer: "全国一律500円、5,000円以上で送料無料です" }))).status, 200);
        assert.equal((await post(list.questions[1].id)).status, 200);
        child.kill("SIGTERM");
      } catch (e) { fail(e); }
    });
    child.on("exit", (code) => { clearTimeout(timer); code === 0 ? ok() : fail(new Error(`kotae demo exited ${code}:\n${err}`)); });
  });
}

before(async () => {
  ws = workspace();
  await demo(ws);
  const journal = join(ws.dir, "kotae.db");
  html = join(ws.dir, "report.html");
  execFileSync(KOTAE, ["--config", ws.config, "report", "--journal", journal, "--stream", "demo", "--format", "html", "--out", html], { cwd: ROOT });
  json = JSON.parse(execFileSync(KOTAE, ["--config", ws.config, "report", "--journal", journal, "--stream", "demo", "--format", "json"], { cwd: ROOT, maxBuffer: 64 << 20 }));
  b = await browser();
});
after(async () => {
  if (b) await b.close();
});

/// A page for a local file that records every request it makes besides that file.
async function open(viewport) {
  const ctx = await b.newContext({ viewport, locale: "ja-JP" });
  const p = await ctx.newPage();
  p.foreign = [];
  await ctx.route("**/*", (route) => {
    const u = route.request().url();
    if (u === `file://${html}`) return route.continue();
    p.foreign.push(u);
    return route.abort();
  });
  await p.goto(`file://${html}`);
  return p;
}

test("the HTML report lists the demo stream's unanswered questions and draws one chart per product", async () => {
  const p = await open({ width: 960, height: 1300 });
  assert.equal(await p.textContent("h1"), "配信レポート — demo");
  const rows = await p.$$eval("#unanswered tbody tr", (trs) => trs.map((tr) => ({ id: tr.dataset.id, text: tr.querySelector(".q").textContent })));
  assert.ok(json.unanswered.length > 100, `the demo leaves many questions open (${json.unanswered.length})`);
  assert.deepEqual(rows.map((r) => r.id), json.unanswered.map((q) => q.id), "every unanswered question, most askers first");
  assert.ok(rows[0].text.includes(json.unanswered[0].question));
  const answered = await p.$$eval("#answered tbody tr", (trs) => trs.map((tr) => tr.querySelector(".ans").textContent));
  assert.deepEqual(answered.sort(), ["全国一律500円、5,000円以上で送料無料です", "（口頭で回答）"].sort());
  // One chart per product, each with bars where its questions were asked.
  const charts = await p.$$eval("svg.chart", (svgs) => svgs.map((s) => ({ product: s.dataset.product, bars: s.querySelectorAll("rect.q").length, line: !!s.querySelector("polyline.pi") })));
  assert.deepEqual(charts.map((c) => c.product), json.products.map((x) => x.id || ""));
  for (const id of ["p1", "p2", "p3", "p4", "p5"]) {
    const c = charts.find((x) => x.product === id);
    assert.ok(c && c.bars > 3 && c.line, `${id} has a chart with questions and purchase intent: ${JSON.stringify(c)}`);
  }
  const headings = await p.$$eval("section.product h3", (hs) => hs.map((h) => h.textContent));
  assert.ok(headings.includes("リネンシャツワンピース") && headings.includes("ショップ全体"), `products by name: ${headings}`);
  assert.ok(await p.$("svg.blocked"), "blocked comments by category");
  await p.screenshot({ path: join(shotDir(), "report.png") });
  await p.evaluate(() => window.scrollTo(0, document.querySelector("section.product").getBoundingClientRect().top + window.scrollY - 80));
  await p.screenshot({ path: join(shotDir(), "report-products.png") });
  assert.deepEqual(p.foreign, [], "the report loads nothing");
  await p.context().close();
});

test("the HTML report prints on A4 without cutting anything off", async () => {
  // A4 is 210 mm wide: 794 CSS pixels; the printable width inside 11 mm margins is 711.
  const p = await open({ width: 711, height: 1000 });
  await p.emulateMedia({ media: "print" });
  const overflow = await p.evaluate(() => [...document.querySelectorAll("body *")]
    .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1).map((e) => e.tagName + "." + e.className));
  assert.deepEqual(overflow, [], "nothing wider than the page");
  const pdf = await p.pdf({ format: "A4", printBackground: true });
  const pages = (pdf.toString("latin1").match(/\/Type\s*\/Page[^s]/g) || []).length;
  assert.ok(pages >= 3, `the follow-up list runs over several A4 pages (${pages})`);
  const size = pdf.toString("latin1").match(/\/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)/);
  assert.ok(Math.abs(size[1] - 595.3) < 1.5 && Math.abs(size[2] - 841.9) < 1.5, `A4 in points: ${size[1]} × ${size[2]}`);
  assert.deepEqual(p.foreign, []);
  await p.context().close();
});
