// Paid questions and platform chats on the host screen, against a real `kotae serve` whose
// YouTube adapter reads a fake Data API that ends the chat after one page.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, workspace, serve, browser, page, send, api, waitFor } from "./harness.mjs";

const PAID = "e2e-paid";
const ENDED = "e2e-ended";
let ws, server, b, youtube;

/// The first poll gets `page1.json`; every later one is the documented 403 `liveChatEnded`.
function fakeYoutube() {
  const page = JSON.parse(readFileSync(join(ROOT, "fixtures/platforms/youtube/page1.json"), "utf8"));
  page.pollingIntervalMillis = 20;
  const ended = readFileSync(join(ROOT, "fixtures/platforms/youtube/error-chat-ended.json"), "utf8");
  return new Promise((ok) => {
    const http = createServer((req, res) => {
      const token = new URL(req.url, "http://x").searchParams.get("pageToken");
      res.writeHead(token ? 403 : 200, { "Content-Type": "application/json" });
      res.end(token ? ended : JSON.stringify(page));
    });
    http.listen(0, "127.0.0.1", () => ok(http));
  });
}

before(async () => {
  youtube = await fakeYoutube();
  ws = workspace();
  appendFileSync(ws.config, [
    "[adapters]",
    "reconnect_min_ms = 10",
    "[[adapters.streams]]",
    `stream = "${ENDED}"`,
    "[adapters.streams.youtube]",
    `live_chat_id = "chat-1"`,
    `api_url = "http://127.0.0.1:${youtube.address().port}/youtube/v3"`,
    "min_poll_ms = 0",
    "",
  ].join("\n"));
  server = await serve(ws);
  b = await browser();
});
after(async () => {
  if (b) await b.close();
  if (server) await server.stop();
  if (youtube) youtube.close();
});

test("a paid question shows what was paid in its own currency", async () => {
  const p = await page(b, server);
  await p.goto(`${server.url}/?stream=${PAID}`);
  await p.waitForSelector("#status.live");
  const ts = 1795316400000;
  await send(p, server, PAID, [
    { id: "usd", user: "a", ts, text: "Lサイズの肩幅は何センチですか", paid: 499, paid_currency: "USD", paid_exponent: 2 },
    { id: "bits", user: "b", ts: ts + 1, text: "Sサイズの袖丈は何センチですか", paid: 200, paid_currency: "BITS" },
    { id: "yen", user: "c", ts: ts + 2, text: "Mサイズの着丈は何センチですか", paid: 1000 },
  ]);
  await waitFor(p, () => document.querySelectorAll("#list .q .paid").length === 3);
  const cards = await p.$$eval("#list .q", (els) => els.map((e) => ({
    paid: e.querySelector(".paid")?.textContent, why: e.querySelector(".why").textContent,
  })));
  assert.deepEqual(cards.map((c) => c.paid).sort(), ["200 bits", "US$4.99", "¥1,000"]);
  for (const c of cards) assert.ok(c.why.includes(`投げ銭 ${c.paid}`), `the why names the amount: ${c.why}`);
  assert.deepEqual(p.errors, []);
  assert.deepEqual(p.foreign, []);
  await p.context().close();
});

test("the host is told when every chat of the stream has ended", async () => {
  const p = await page(b, server);
  await p.goto(`${server.url}/?stream=${ENDED}`);
  await p.waitForSelector("#chatstate:not([hidden])", { timeout: 15000 });
  const pill = await p.$eval("#chatstate", (e) => ({ text: e.textContent, off: e.classList.contains("off") }));
  assert.match(pill.text, /チャットはすべて終了しました（YouTube: 配信終了）/);
  assert.ok(pill.off, "shown as a warning");
  const { json } = await api(server, `/v1/streams/${ENDED}/summary`);
  assert.equal(json.adapters.all_ended, true);
  // A stream without adapters shows nothing of the kind.
  const other = await page(b, server);
  await other.goto(`${server.url}/?stream=${PAID}`);
  await other.waitForSelector("#status.live");
  await waitFor(other, () => document.querySelector("#blocked").textContent.startsWith("ブロック"));
  assert.equal(await other.$eval("#chatstate", (e) => e.hidden), true);
  assert.deepEqual(p.errors.concat(other.errors), []);
  await p.context().close();
  await other.context().close();
});
