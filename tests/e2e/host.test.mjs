// The host screen against a real `kotae serve`, in headless Chromium.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { workspace, serve, replay, demoSlice, browser, page, send, api, shotDir, waitFor } from "./harness.mjs";

const STREAM = "e2e-host";
let ws, server, b;

before(async () => {
  ws = workspace();
  server = await serve(ws);
  // The bundled demo stream's first minutes, with two products shown in turn.
  await api(server, `/v1/streams/${STREAM}/product`, "PUT", { product: "ワンピース" });
  await replay(server, STREAM, demoSlice(ws, 500));
  await api(server, `/v1/streams/${STREAM}/product`, "PUT", { product: "日焼け止め" });
  await replay(server, STREAM, demoSlice(ws, 1000, 500));
  b = await browser();
});
after(async () => {
  if (b) await b.close();
  if (server) await server.stop();
});

const shownIds = (p) => p.$$eval("#list .q", (els) => els.map((e) => e.dataset.id));
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

test("questions appear ranked, with counts, the why, wordings and askers", async () => {
  const p = await page(b, server);
  await p.goto(`${server.url}/?stream=${STREAM}`);
  await p.waitForSelector("#list .q");
  const { json } = await api(server, `/v1/streams/${STREAM}/questions`);
  assert.ok(json.questions.length >= 5, `the replay produced questions (${json.questions.length})`);
  // (The most-asked question about the product on screen is moved up into the first three.)
  const scores = json.questions.filter((q) => q.state === "open" && !q.why.startsWith("紹介中で最多")).map((q) => q.score);
  assert.deepEqual(scores, [...scores].sort((a, b) => b - a), "the server ranks open questions by score");
  // The page shows the server's order (retried: waiting time moves scores between two reads).
  await until(async () => {
    await p.reload();
    await p.waitForSelector("#list .q");
    const server_ids = (await api(server, `/v1/streams/${STREAM}/questions`)).json.questions.map((q) => q.id).slice(0, 5);
    const shown = (await shownIds(p)).slice(0, 5);
    return JSON.stringify(server_ids) === JSON.stringify(shown);
  }, "the page to show the server's ranking");
  const first = await p.$eval("#list .q", (e) => ({
    count: e.querySelector(".count").textContent, why: e.querySelector(".why").textContent,
    wordings: e.querySelectorAll(".wordings span").length, asker: e.querySelector(".wordings b")?.textContent,
  }));
  assert.match(first.count, /^×\d+$/);
  assert.match(first.why, /人|待ち|紹介中/, "the why is in Japanese");
  assert.ok(first.wordings >= 1 && first.asker, "original wordings with asker names");
  await waitFor(p, () => [...document.querySelectorAll("#ticker .spark i")].some((i) => parseInt(i.style.height) > 0));
  const ticker = await p.textContent("#ticker");
  assert.match(ticker, /日焼け止め ポチった\s*\d+/, "purchase intents per product on screen");
  assert.match(await p.textContent("#blocked"), /ブロック \d+/);
  await p.screenshot({ path: join(shotDir(), "host.png") });
  const phone = await page(b, server, { width: 390, height: 844 });
  await phone.goto(`${server.url}/?stream=${STREAM}`);
  await phone.waitForSelector("#list .q");
  await waitFor(phone, () => document.querySelector("#ticker .tick"));
  await phone.screenshot({ path: join(shotDir(), "host-phone.png") });
  assert.ok(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "no sideways scrolling on a phone");
  const font = await p.$eval("#list .q .text", (e) => parseFloat(getComputedStyle(e).fontSize));
  assert.ok(font >= 30, `the top question is large enough to read at a distance (${font}px)`);
  assert.deepEqual(p.foreign.concat(phone.foreign), [], "no request leaves kotae");
  assert.deepEqual(p.errors.concat(phone.errors), [], "no script errors");
  await p.context().close();
  await phone.context().close();
});

test("marking answered with the a key removes it and changes the server state; u undoes", async () => {
  const p = await page(b, server);
  await p.goto(`${server.url}/?stream=${STREAM}`);
  await p.waitForSelector("#list .q.sel");
  const id = await p.$eval("#list .q.sel", (e) => e.dataset.id);
  await p.keyboard.press("a");
  await until(async () => !(await shownIds(p)).includes(id), "the answered question to leave the page");
  const open = (await api(server, `/v1/streams/${STREAM}/questions`)).json.questions.map((q) => q.id);
  assert.ok(!open.includes(id), "the server no longer lists it as open");
  await p.waitForSelector("#undo.show");
  await p.keyboard.press("u");
  await until(async () => (await api(server, `/v1/streams/${STREAM}/questions`)).json.questions.some((q) => q.id === id), "undo to reopen it");
  await until(async () => (await shownIds(p)).includes(id), "the reopened question to come back");
  // Pin by tapping the button, then unpin with the p key.
  const second = (await shownIds(p))[1];
  await p.click(`#list .q[data-id="${second}"] button[data-act="p"]`);
  await until(async () => (await api(server, `/v1/streams/${STREAM}/questions`)).json.questions.find((q) => q.id === second)?.state === "pinned", "pin");
  await p.waitForSelector(`#list .q.sel.pinned[data-id="${second}"]`);
  await p.keyboard.press("p");
  await until(async () => (await api(server, `/v1/streams/${STREAM}/questions`)).json.questions.find((q) => q.id === second)?.state === "open", "unpin");
  // Dismiss with the d key after moving down with j.
  await p.keyboard.press("r");
  await p.keyboard.press("j");
  const third = await p.$eval("#list .q.sel", (e) => e.dataset.id);
  await p.keyboard.press("d");
  await until(async () => !(await api(server, `/v1/streams/${STREAM}/questions`)).json.questions.some((q) => q.id === third), "dismiss");
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

test("a new item does not move the item the host is reading", async () => {
  const p = await page(b, server);
  await p.goto(`${server.url}/?stream=${STREAM}`);
  await p.waitForSelector("#list .q.sel");
  // Read an item far enough down that the burst below will outrank it.
  const depth = Math.min(5, (await shownIds(p)).length - 1);
  for (let i = 0; i < depth; i++) await p.keyboard.press("j");
  const reading = await p.$eval("#list .q.sel", (e) => ({ id: e.dataset.id, top: e.getBoundingClientRect().top }));
  const before = (await shownIds(p)).length;
  // A burst of viewers asking something nobody asked before (the warranty), which then
  // outranks the item being read. Stamped in the replayed stream's own time, so "waiting" stays
  // as it was.
  const ts = (await api(server, `/v1/streams/${STREAM}/questions`)).json.now;
  const texts = ["保証期間は何年ですか？", "すみません、保証期間は何年ですか", "保証期間って何年ですか？",
    "保証期間は何年？", "保証期間何年ありますか", "保証期間は何年でしょうか", "保証期間って何年？",
    "保証期間は何年になりますか", "すみません 保証期間は何年ですか？", "保証期間何年ですか？"];
  const asks = [...texts, ...texts].map((text, i) => ({ id: `burst${i}`, user: `viewer${i}`, ts: ts + i, text }));
  const verdicts = await send(p, server, STREAM, asks);
  // The burst's question, by the id its verdicts carry (it may join an older question about the
  // same stock, whose first wordings are not the burst's).
  const burstId = verdicts[0].cluster;
  assert.ok(burstId && verdicts.every((v) => v.cluster === burstId), `one question: ${verdicts.map((v) => v.cluster)}`);
  const ranked = await until(async () => {
    const qs = (await api(server, `/v1/streams/${STREAM}/questions`)).json.questions;
    const burst = qs.findIndex((q) => q.id === burstId);
    if (burst < 0) return null;
    // Arrived on the page: its card shows the server's count (the cluster may be an old one).
    const count = await p.$eval(`#list .q[data-id="${qs[burst].id}"] .count`, (e) => e.textContent).catch(() => "");
    return count === `×${qs[burst].askers}` ? { qs, burst } : null;
  }, "the new question to arrive");
  const readingRank = ranked.qs.findIndex((q) => q.id === reading.id);
  assert.ok(ranked.burst < readingRank, `the new question (#${ranked.burst}) outranks the one being read (#${readingRank})`);
  const now = await p.$eval("#list .q.sel", (e) => ({ id: e.dataset.id, top: e.getBoundingClientRect().top }));
  assert.equal(now.id, reading.id, "the same item stays selected");
  assert.equal(now.top, reading.top, "and at the same place on screen");
  const state = await p.evaluate(() => JSON.stringify({ shown: shown.slice(0, 8), sel, ranked: data.questions.slice(0, 8).map((q) => q.id) }));
  assert.ok(await p.isVisible("#newnote.show"), `the host is told something new ranks higher: ${state} server ${ranked.qs.slice(0, 8).map((q) => q.id)}`);
  await p.keyboard.press("r");
  await until(async () => {
    const server_ids = (await api(server, `/v1/streams/${STREAM}/questions`)).json.questions.map((q) => q.id).slice(0, 3);
    await p.keyboard.press("r");
    return JSON.stringify((await shownIds(p)).slice(0, 3)) === JSON.stringify(server_ids);
  }, "r to re-rank the page like the server");
  await p.context().close();
});

test("the current-product selector sets the on-screen product", async () => {
  const p = await page(b, server);
  await p.goto(`${server.url}/?stream=${STREAM}`);
  await p.waitForSelector("#list .q");
  await p.fill("#newproduct", "p9");
  await p.press("#newproduct", "Enter");
  await until(async () => (await api(server, `/v1/streams/${STREAM}/questions`)).json.current_product === "p9", "the product to be set");
  assert.equal(await p.$eval("#product", (e) => e.value), "p9");
  await p.context().close();
});

test("the page shows a banner when the server goes away and reconnects after a restart", async () => {
  const p = await page(b, server);
  await p.goto(`${server.url}/?stream=${STREAM}`);
  await p.waitForSelector("#status.live");
  const ids = await shownIds(p);
  const addr = server.addr;
  await server.stop();
  await p.waitForSelector("#banner", { state: "visible" });
  assert.equal(await p.$eval("#status", (e) => e.textContent), "切断");
  await p.screenshot({ path: join(shotDir(), "host-disconnected.png") });
  server = await serve(ws, addr);
  await p.waitForSelector("#status.live", { timeout: 15000 });
  await p.waitForSelector("#banner", { state: "hidden" });
  // The journal restored the open questions.
  await until(async () => (await shownIds(p)).filter((id) => ids.includes(id)).length >= Math.min(3, ids.length), "restored questions");
  assert.deepEqual(p.foreign, []);
  await p.context().close();
});
