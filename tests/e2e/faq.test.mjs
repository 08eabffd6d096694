// Answers with text, the FAQ page for late joiners, the stream overview, and the host screen in
// Japanese, against a real `kotae serve` in headless Chromium.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, workspace, serve, replay, demoSlice, browser, page, api, shotDir, waitFor } from "./harness.mjs";

const STREAM = "e2e-faq";
const catalog = JSON.parse(readFileSync(join(ROOT, "fixtures/streams/demo.products.json"), "utf8"));
const names = Object.fromEntries(catalog.products.map((p) => [p.id, p.name]));
let ws, server, b;

before(async () => {
  ws = workspace();
  server = await serve(ws);
  // The demo's catalogue (its schedule fields are ignored) and its first product on screen.
  assert.equal((await api(server, `/v1/streams/${STREAM}/catalog`, "PUT", catalog)).status, 200);
  await api(server, `/v1/streams/${STREAM}/product`, "PUT", { product: "p1" });
  await replay(server, STREAM, demoSlice(ws, 700));
  b = await browser();
});
after(async () => {
  if (b) await b.close();
  if (server) await server.stop();
});

async function until(f, what, ms = 10000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await f();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}
const faq = async () => (await api(server, `/v1/streams/${STREAM}/faq`)).json;

test("an answer typed on the host screen shows on the FAQ page, grouped by product, and can be corrected", async () => {
  const host = await page(b, server);
  await host.goto(`${server.url}/?stream=${STREAM}`);
  await host.waitForSelector("#list .q.sel");
  // The card names the product by its catalogue name.
  const first = await host.$eval("#list .q.sel", (e) => ({ id: e.dataset.id, product: e.querySelector(".prod").textContent }));
  const q = (await api(server, `/v1/streams/${STREAM}/questions`)).json.questions.find((x) => x.id === first.id);
  assert.equal(first.product, q.product ? names[q.product] : "ショップ全体");
  // Type the answer (t focuses the field), Enter marks the selected question answered with it.
  await host.keyboard.press("t");
  await host.keyboard.type("全国一律500円、5,000円以上で送料無料です");
  await host.keyboard.press("Enter");
  await until(async () => (await faq()).answered.some((e) => e.id === first.id), "the question to be answered");
  const entry = (await faq()).answered.find((e) => e.id === first.id);
  assert.equal(entry.answer, "全国一律500円、5,000円以上で送料無料です");
  // One key still marks answered, without a text.
  await waitFor(host, (id) => document.querySelector("#list .q.sel")?.dataset.id !== id, first.id);
  const second = await host.$eval("#list .q.sel", (e) => e.dataset.id);
  await host.keyboard.press("a");
  await until(async () => (await faq()).answered.some((e) => e.id === second), "the a key to answer");
  assert.equal((await faq()).answered.find((e) => e.id === second).answer, null);
  await host.screenshot({ path: join(shotDir(), "host-answer.png") });

  // The FAQ page, on a phone: both answers, under their products' names, newest first.
  const phone = await page(b, server, { width: 390, height: 844 });
  await phone.goto(`${server.url}/faq?stream=${STREAM}`);
  await phone.waitForSelector(`li[data-id="${first.id}"] .a`);
  assert.equal(await phone.textContent(`li[data-id="${first.id}"] .a`), "全国一律500円、5,000円以上で送料無料です");
  assert.match(await phone.textContent(`li[data-id="${second}"] .a`), /配信の中でお答えしました（\d\d:\d\d）/);
  const groups = await phone.$$eval("section", (s) => s.map((e) => ({ product: e.dataset.product, name: e.querySelector("h2").textContent })));
  for (const g of groups) assert.equal(g.name, g.product ? names[g.product] : "ショップ全体");
  assert.equal(await phone.textContent("h1"), "この配信で答えた質問");
  assert.ok(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "no sideways scrolling on a phone");
  const size = await phone.$eval(`li[data-id="${first.id}"] .a`, (e) => parseFloat(getComputedStyle(e).fontSize));
  assert.ok(size >= 16, `answers are readable on a phone (${size}px)`);
  await phone.screenshot({ path: join(shotDir(), "faq-phone.png"), fullPage: true });

  // Corrected from the host screen's recent answers; the FAQ follows.
  await host.waitForSelector(`#recent li[data-id="${first.id}"] button.edit`);
  await host.click(`#recent li[data-id="${first.id}"] button.edit`);
  assert.match(await host.textContent("#answerlabel"), /^回答を直す/);
  await host.fill("#answer", "全国一律500円です（5,000円以上で無料）");
  await host.press("#answer", "Enter");
  await until(async () => (await faq()).answered.find((e) => e.id === first.id).answer === "全国一律500円です（5,000円以上で無料）", "the edit");
  await phone.reload();
  await waitFor(phone, (id) => document.querySelector(`li[data-id="${id}"] .a`)?.textContent === "全国一律500円です（5,000円以上で無料）", first.id, { timeout: 15000 });
  // The verdict of the question asked again carries the answer.
  const wording = q.wordings[0].text;
  const [v] = await host.evaluate(async ({ url, text }) => new Promise((ok) => {
    const s = new WebSocket(url);
    s.onopen = () => s.send(JSON.stringify({ id: "again", user: "late", text }));
    s.onmessage = (m) => { s.close(); ok([JSON.parse(m.data)]); };
  }), { url: `ws://${server.addr}/v1/ingest?stream=${STREAM}`, text: wording });
  assert.equal(v.cluster, first.id);
  assert.equal(v.answer, "全国一律500円です（5,000円以上で無料）");
  assert.match(v.answered_at, /^\d\d:\d\d$/);
  assert.deepEqual(host.foreign.concat(phone.foreign), [], "no request leaves kotae");
  assert.deepEqual(host.errors.concat(phone.errors), [], "no script errors");
  await host.context().close();
  await phone.context().close();
});

/// Every piece of text a person reads: visible text, placeholders, titles and labels.
const readable = (p) => p.evaluate(() => {
  const out = [document.title];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest("script, style, [hidden]") || getComputedStyle(el).display === "none") continue;
    // Viewers' own words (questions, names) are content, not the page's text.
    if (el.closest(".wordings, .q .text, .recent span:first-child, .again li, #stream")) continue;
    out.push(n.textContent);
  }
  for (const el of document.querySelectorAll("[placeholder], [title], [aria-label]")) {
    for (const a of ["placeholder", "title", "aria-label"]) if (el.getAttribute(a)) out.push(el.getAttribute(a));
  }
  return out;
});

test("all text a host reads is Japanese with locale ja, errors included", async () => {
  const p = await page(b, server);
  await p.goto(`${server.url}/?stream=${STREAM}`);
  await p.waitForSelector("#list .q");
  await waitFor(p, () => document.querySelector("#ticker .tick"));
  // A failed action: the server's message in Japanese.
  await p.evaluate(() => act({ id: "q999999", wordings: [] }, "answered", "reopen", "host.did.answered"));
  await p.waitForSelector("#undo.show");
  assert.equal(await p.textContent("#undotext"), "失敗しました: その質問は見つかりません（もう消えたかもしれません）");
  const why = await p.$$eval("#list .q .why", (els) => els.map((e) => e.textContent));
  for (const w of why) assert.match(w, /×\d+人.*(秒|分)待ち/, `the why is Japanese: ${w}`);
  assert.ok(why.some((w) => w.includes("紹介中")), "the product on screen is named 紹介中");
  // Product names (and the data in them, UV…) and paid amounts are content; the rest is Japanese.
  const data = Object.values(names).concat(["kotae", "ID", "UV", STREAM]);
  const latin = [];
  for (let text of await readable(p)) {
    for (const d of data) text = text.split(d).join("");
    text = text.replace(/(US\$|¥)[\d,.]+|\d+ bits/g, "");
    for (const m of text.match(/[A-Za-z]{2,}/g) || []) latin.push(`${m} in “${text.trim()}”`);
  }
  assert.deepEqual(latin, [], "no English words on the host screen");
  const product = await p.$eval("#product", (s) => s.options[s.selectedIndex].textContent);
  assert.equal(product, names.p1, "the product selector shows names");
  const ticker = await p.textContent("#ticker");
  assert.ok(ticker.includes(`${names.p1} ポチった`), `the ticker names products: ${ticker}`);
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

test("the overview lists every stream with what waits, its product on screen and links", async () => {
  await api(server, "/v1/streams/e2e-faq-second/product", "PUT", { product: null });
  await replay(server, "e2e-faq-second", demoSlice(ws, 150));
  const p = await page(b, server, { width: 1100, height: 800 });
  await p.goto(`${server.url}/overview`);
  await p.waitForSelector(`section[data-stream="${STREAM}"]`);
  await p.waitForSelector('section[data-stream="e2e-faq-second"]');
  const card = await p.$eval(`section[data-stream="${STREAM}"]`, (e) => ({
    onscreen: e.querySelector(".onscreen").textContent, open: e.querySelector(".nums .open b").textContent,
    top: e.querySelector(".top .text")?.textContent, links: [...e.querySelectorAll(".links a")].map((a) => a.getAttribute("href")),
  }));
  const list = (await api(server, `/v1/streams/${STREAM}/questions`)).json;
  assert.equal(card.onscreen, `紹介中: ${names.p1}`);
  assert.equal(Number(card.open), list.questions.length);
  assert.ok(card.top, "the most urgent question is shown");
  assert.deepEqual(card.links, [`/?stream=${STREAM}`, `/faq?stream=${STREAM}`]);
  await p.screenshot({ path: join(shotDir(), "overview.png") });
  assert.deepEqual(p.foreign, []);
  assert.deepEqual(p.errors, []);
  await p.context().close();
});
