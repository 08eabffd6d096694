// Questions about products: the stream's catalogue names each card's product, answering one
// product's price leaves another product's price question open, and the most-asked question
// about the product on screen stays in the first three.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { workspace, serve, browser, page, send, api, waitFor } from "./harness.mjs";

/// PUTs a body of `bytes` the way a careful client does (`Expect: 100-continue`, the body sent
/// only once the server asks for it) and resolves with the status.
function putLarge(url, bytes) {
  return new Promise((ok, fail) => {
    const req = request(url, {
      method: "PUT",
      headers: { "Content-Type": "application/json", "Content-Length": bytes, Expect: "100-continue" },
    });
    req.on("response", (r) => { r.resume(); ok(r.statusCode); });
    req.on("error", fail);
    req.on("continue", () => req.end(Buffer.alloc(bytes, 0x78)));
  });
}

const STREAM = "e2e-catalog";
const CATALOG = {
  products: [
    { id: "p1", name: "リネンシャツワンピース", keywords: ["ワンピ", "ワンピース", "リネン"] },
    { id: "p3", name: "ニットカーディガン", keywords: ["カーデ", "カーディガン", "ニット"] },
    { id: "p5", name: "レザー調トートバッグ", keywords: ["トート", "バッグ"] },
  ],
};
let ws, server, b;

before(async () => {
  ws = workspace();
  server = await serve(ws);
  b = await browser();
});
after(async () => {
  if (b) await b.close();
  if (server) await server.stop();
});

const t0 = 1_764_000_000_000;
let n = 0;
const msg = (user, text, sec) => ({ id: `m${++n}`, user, text, ts: t0 + sec * 1000 });

test("a catalogue with problems is refused with every problem and the previous one stays", async () => {
  assert.equal((await api(server, `/v1/streams/${STREAM}/catalog`, "PUT", CATALOG)).status, 200);
  const bad = { products: [{ id: "p1", name: "" }, { id: "p1", name: "重複" }, { id: "x", name: "ok", keywords: ["ｘ"] }] };
  const r = await api(server, `/v1/streams/${STREAM}/catalog`, "PUT", bad);
  assert.equal(r.status, 422);
  assert.equal(r.json.problems.length, 3, JSON.stringify(r.json.problems));
  assert.equal(await putLarge(`${server.url}/v1/streams/${STREAM}/catalog`, 10 * 1024 * 1024), 413);
  const kept = await api(server, `/v1/streams/${STREAM}/catalog`);
  assert.deepEqual(kept.json.products.map((p) => p.id), ["p1", "p3", "p5"], "the previous catalogue stays");
});

test("cards name their product; answering one product's price leaves the other's open", async () => {
  const p = await page(b, server);
  await p.goto(`${server.url}/?stream=${STREAM}`);
  await api(server, `/v1/streams/${STREAM}/product`, "PUT", { product: "p1" });
  const verdicts = await send(p, server, STREAM, [
    msg("a", "ワンピのお値段いくらですか？", 1),
    msg("b", "これおいくら？", 2),
    msg("c", "トートバッグのお値段は？", 3),
  ]);
  assert.equal(verdicts[0].product, "p1");
  assert.equal(verdicts[2].product, "p5", "named: about the tote, though the dress is on screen");
  assert.equal(verdicts[0].cluster, verdicts[1].cluster, "the dress's price, asked twice");
  assert.notEqual(verdicts[0].cluster, verdicts[2].cluster, "two products' prices are two questions");
  const dress = verdicts[0].cluster.replace(/^.*:/, "");
  const tote = verdicts[2].cluster.replace(/^.*:/, "");
  await waitFor(p, (id) => document.querySelector(`#list .q[data-id="${id}"] .prod`), tote);
  const names = await p.$$eval("#list .q", (els) => Object.fromEntries(els.map((e) => [e.dataset.id, e.querySelector(".prod")?.textContent])));
  assert.equal(names[dress], "リネンシャツワンピース");
  assert.equal(names[tote], "レザー調トートバッグ");
  // Answer the dress's price with the key, on its card.
  await p.click(`#list .q[data-id="${dress}"] .text`);
  await p.keyboard.press("a");
  await waitFor(p, (id) => !document.querySelector(`#list .q[data-id="${id}"]:not(.gone)`), dress);
  const list = (await api(server, `/v1/streams/${STREAM}/questions`)).json;
  assert.ok(list.questions.some((q) => q.id === tote), "the tote's price is still open");
  // A new viewer asks the tote's price: still an open question, not "answered at …".
  const [again] = await send(p, server, STREAM, [msg("d", "トートっていくらでしたっけ", 4)]);
  assert.equal(again.cluster, verdicts[2].cluster);
  assert.equal(again.answered_at, undefined, "nobody answered the tote's price");
  const [dressAgain] = await send(p, server, STREAM, [msg("e", "ワンピースの値段は？", 5)]);
  assert.equal(dressAgain.cluster, verdicts[0].cluster);
  assert.ok(dressAgain.answered_at, "the dress's price was answered");
  assert.equal(p.foreign.length, 0, `requests outside kotae: ${p.foreign}`);
});

test("the most-asked question about the product on screen is in the first three", async () => {
  const p = await page(b, server);
  await p.goto(`${server.url}/?stream=${STREAM}`);
  // Many viewers ask about the dress; then the cardigan comes on and one question is asked twice.
  const dressQuestions = ["Mの着丈は何センチですか", "洗濯機で洗えますか", "透けますか", "Lサイズありますか", "裏地ついてますか"];
  const batch = [];
  dressQuestions.forEach((q, i) => {
    for (let k = 0; k < 4; k++) batch.push(msg(`dress${i}-${k}`, `ワンピース${q}`, 10 + i * 4 + k));
  });
  await send(p, server, STREAM, batch);
  await api(server, `/v1/streams/${STREAM}/product`, "PUT", { product: "p3" });
  await send(p, server, STREAM, [msg("k1", "チクチクしますか？", 60), msg("k2", "チクチクしない？", 61)]);
  await p.reload();
  await p.waitForSelector("#list .q");
  const list = (await api(server, `/v1/streams/${STREAM}/questions`)).json;
  const top3 = list.questions.slice(0, 3);
  assert.ok(top3.some((q) => q.product === "p3"), `p3's question in ${JSON.stringify(top3.map((q) => [q.id, q.product, q.why]))}`);
  const shown = await p.$$eval("#list .q .prod", (els) => els.slice(0, 3).map((e) => e.textContent));
  assert.ok(shown.includes("ニットカーディガン"), `the host sees it in the first three: ${shown}`);
});
