// The moderator console against a real `kotae serve`, in headless Chromium.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { workspace, serve, replay, demoSlice, browser, page, send, api, shotDir, waitFor } from "./harness.mjs";

const STREAM = "e2e-mod";
let ws, server, b, p;

before(async () => {
  ws = workspace();
  server = await serve(ws);
  await replay(server, STREAM, demoSlice(ws, 400));
  b = await browser();
  p = await page(b, server, { width: 1360, height: 1000 });
  await p.goto(`${server.url}/moderator?stream=${STREAM}`);
  await p.fill("#who", "山田");
  await p.dispatchEvent("#who", "change");
});
after(async () => {
  if (b) await b.close();
  if (server) await server.stop();
});

test("testing a phrase shows the normalized form, tokens with POS, labels, scores and highlighted reasons", async () => {
  await p.fill("#phrase", "ﾌﾞｽは黙れ、LINE交換しよ");
  await p.click("#testbtn");
  await waitFor(p, () => document.querySelector("#result .original")?.textContent.includes("LINE交換"));
  const r = await p.$eval("#result", (e) => ({
    normalized: e.querySelector("#normalized").textContent,
    tokens: [...e.querySelectorAll(".tok")].map((t) => [t.querySelector("b").textContent, t.querySelector("small").textContent]),
    labels: [...e.querySelectorAll(".row .lab")].map((l) => l.textContent),
    marks: [...e.querySelectorAll(".original mark")].map((m) => m.textContent),
    action: e.querySelector(".badge").textContent,
  }));
  assert.ok(r.normalized.includes("ブス"), `NFKC folds half-width kana (${r.normalized})`);
  assert.ok(r.tokens.length >= 4 && r.tokens.some(([, pos]) => pos.length > 0), "tokens carry a part of speech");
  assert.ok(r.labels.includes("悪口"), `abuse is labelled (${r.labels})`);
  assert.ok(r.marks.some((m) => m.includes("ﾌﾞｽ")), `the matched span is highlighted in the original (${r.marks})`);
  assert.equal(r.action, "ブロック");
});

test("a dictionary edit is dry-run against the stream, applied, audited and changes the next verdict", async () => {
  const text = "へなちょこ配信";
  const [v1] = await send(p, server, STREAM, [{ id: "pk1", user: "troll", text }]);
  assert.equal(v1.action, "allow", "not abuse before the edit");
  await p.selectOption("#list", "abuse");
  await p.selectOption("#section", "insult");
  await p.fill("#term", "へなちょこ");
  await p.click("#dryrun");
  await p.waitForSelector("#difftable");
  assert.ok((await p.textContent("#difftable")).includes(text), "the dry run shows the stream's message that would change");
  assert.equal(await p.isDisabled("#apply"), false);
  await p.screenshot({ path: join(shotDir(), "moderator.png"), fullPage: true });
  await p.click("#apply");
  await p.waitForSelector("#applied");
  const [v2] = await send(p, server, STREAM, [{ id: "pk2", user: "troll2", text }]);
  assert.ok(v2.labels.includes("abuse"), `abuse after the edit (${JSON.stringify(v2)})`);
  assert.notEqual(v2.action, "allow");
  assert.match(readFileSync(join(ws.dict, "abuse.txt"), "utf8"), /^へなちょこ$/m, "written to the file");
  const audit = (await api(server, "/v1/moderator/audit")).json;
  const e = audit.entries.find((x) => x.action === "dictionary.add");
  assert.equal(e.who, "山田");
  assert.equal(e.detail.term, "へなちょこ");
  assert.ok(readFileSync(audit.file, "utf8").includes("へなちょこ"), "the audit log is persisted");
  await waitFor(p, () => document.querySelector("#audit").textContent.includes("へなちょこ"));
  // Removing it takes effect too.
  await p.fill("#search", "へなちょこ");
  await p.click("#terms button.rm");
  await p.waitForSelector("#apply:not([disabled])");
  await p.click("#apply");
  await p.waitForSelector("#applied");
  const [v3] = await send(p, server, STREAM, [{ id: "pk3", user: "troll3", text }]);
  assert.equal(v3.action, "allow", "allowed again after removal");
});

test("a broken dictionary edit is refused with a message and changes nothing", async () => {
  const before = (await api(server, "/v1/moderator/dictionaries")).json.entries;
  const file = readFileSync(join(ws.dict, "spam.txt"), "utf8");
  await p.fill("#search", "");
  await p.selectOption("#list", "spam");
  await p.fill("#term", "・・・");
  await p.click("#dryrun");
  await p.waitForSelector("#dicterror");
  assert.match(await p.textContent("#dicterror"), /正規化すると何も残りません/, "the refusal is shown in Japanese");
  assert.equal(await p.isDisabled("#apply"), true);
  // A duplicate is refused too, naming the line it duplicates.
  const first = (await api(server, "/v1/moderator/dictionaries")).json.lists.find((l) => l.list === "spam").sections[0];
  const r = await api(server, "/v1/moderator/dictionaries/apply", "POST", { op: "add", list: "spam", section: first.name, term: first.terms[0].term });
  assert.equal(r.status, 422);
  assert.match(r.json.error, /duplicate of spam\.txt:\d+/);
  assert.equal((await api(server, "/v1/moderator/dictionaries")).json.entries, before);
  assert.equal(readFileSync(join(ws.dict, "spam.txt"), "utf8"), file, "the file is untouched");
});

test("held messages show why and can be approved or denied; settings are per stream", async () => {
  // Block nothing automatically on this stream: abuse is held for a person instead.
  await p.fill("#block_at", "1");
  await p.fill("#slow", "0");
  await p.click("#savesettings");
  await p.waitForSelector("#setmsg .msg");
  assert.equal(await p.textContent("#setmsg .msg"), "保存しました");
  const s = (await api(server, `/v1/streams/${STREAM}/settings`)).json.settings;
  assert.equal(s.block_at, 1);
  const [v] = await send(p, server, STREAM, [{ id: "h1", user: "x", text: "ブスは黙れ" }, { id: "h2", user: "y", text: "死ね" }]);
  assert.equal(v.action, "hold");
  await p.waitForSelector('#held tr[data-id="h1"]', { timeout: 8000 });
  assert.match(await p.textContent('#held tr[data-id="h1"] .why'), /悪口 \d\.\d\d/);
  await p.screenshot({ path: join(shotDir(), "moderator-held.png"), fullPage: true });
  await p.click('#held tr[data-id="h1"] button.approve');
  await p.waitForSelector('#held tr[data-id="h1"]', { state: "detached" });
  await p.click('#held tr[data-id="h2"] button.deny');
  await p.waitForSelector('#held tr[data-id="h2"]', { state: "detached" });
  const held = (await api(server, `/v1/streams/${STREAM}/held?all=1`)).json.held;
  assert.deepEqual(held.filter((h) => h.id.startsWith("h")).map((h) => [h.id, h.state, h.decided_by]).sort(), [["h1", "approved", "山田"], ["h2", "denied", "山田"]]);
  // Another stream keeps the server's defaults.
  assert.equal((await api(server, "/v1/streams/other/settings")).json.settings.block_at, null);
  // A bad setting is refused.
  const bad = await api(server, `/v1/streams/${STREAM}/settings`, "PUT", { hold_at: 0.9, block_at: 0.2 });
  assert.equal(bad.status, 422);
  assert.deepEqual(p.foreign, [], "no request leaves kotae");
  assert.deepEqual(p.errors, []);
});
