// Test harness: a real `kotae serve` on a free loopback port with a private copy of the
// dictionaries and journal, and a headless Chromium (Debian's) driven by playwright-core.
import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, mkdirSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const KOTAE = process.env.KOTAE_BIN || join(ROOT, "target/release/kotae");
/// Where the tests save their screenshots: a temporary directory, so a checkout stays clean
/// after its own test run. `scripts/screenshots.sh` sets KOTAE_SCREENSHOTS to docs/screenshots
/// to refresh the README's pictures.
export const SCREENSHOTS = process.env.KOTAE_SCREENSHOTS || join(tmpdir(), "kotae-screenshots");

/// A private directory with a copy of the dictionaries and a config pointing at it.
export function workspace() {
  const dir = mkdtempSync(join(tmpdir(), "kotae-e2e-"));
  cpSync(join(ROOT, "dictionaries/ja"), join(dir, "dict"), { recursive: true });
  const config = join(dir, "kotae.toml");
  writeFileSync(config, [
    "[pipeline]",
    `dictionaries = ${JSON.stringify(join(dir, "dict"))}`,
    "[pipeline.tokenize]",
    `cache_dir = ${JSON.stringify(process.env.KOTAE_CACHE || join(ROOT, ".kotae"))}`,
    "[server]",
    "host_push_interval_ms = 100",
    "shutdown_deadline_ms = 3000",
    "[server.journal]",
    `path = ${JSON.stringify(join(dir, "kotae.db"))}`,
    "flush_interval_ms = 10",
    "",
  ].join("\n"));
  return { dir, config, dict: join(dir, "dict") };
}

/// Starts `kotae serve` and resolves once it prints where it listens.
export function serve(ws, listen = "127.0.0.1:0") {
  return new Promise((ok, fail) => {
    const child = spawn(KOTAE, ["--config", ws.config, "serve", "--listen", listen], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "warn" },
    });
    let out = "", err = "";
    const timer = setTimeout(() => fail(new Error(`kotae serve did not start:\n${err}`)), 60000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/kotae listening on (http:\/\/[\d.:]+)/);
      if (m) {
        clearTimeout(timer);
        const url = m[1];
        ok({ child, url, addr: url.replace("http://", ""), stderr: () => err, stop: () => stop(child) });
      }
    });
    child.stderr.on("data", (d) => { err += d; });
    child.on("exit", (code) => { clearTimeout(timer); fail(new Error(`kotae serve exited ${code}:\n${err}`)); });
  });
}

function stop(child) {
  return new Promise((ok) => {
    if (child.exitCode !== null) return ok();
    child.once("exit", () => ok());
    child.kill("SIGTERM");
  });
}

/// Replays a JSON Lines file into a stream with `kotae replay` over a real websocket.
export function replay(server, stream, file, rate = 4000) {
  return new Promise((ok, fail) => {
    const child = spawn(KOTAE, ["replay", file, "--to", `ws://${server.addr}/v1/ingest?stream=${stream}`, "--rate", String(rate)], {
      cwd: ROOT, stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "", err = "";
    child.stdout.on("data", (d) => { out += d; });
    child.stderr.on("data", (d) => { err += d; });
    child.on("exit", (code) => (code === 0 ? ok(out) : fail(new Error(`replay exited ${code}: ${err}`))));
  });
}

/// Writes lines `from..to` of the bundled demo stream to a file and returns its path.
export function demoSlice(ws, to, from = 0) {
  const lines = readFileSync(join(ROOT, "fixtures/streams/demo.jsonl"), "utf8").split("\n").filter(Boolean).slice(from, to);
  const file = join(ws.dir, `demo-${from}-${to}.jsonl`);
  writeFileSync(file, lines.join("\n") + "\n");
  return file;
}

/// Headless Chromium with nothing that reaches out on its own.
export async function browser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    // playwright gives every launch a fresh, temporary --user-data-dir of its own.
  });
}

/// A page that records every request it makes that is not to `server` (there must be none).
export async function page(b, server, viewport = { width: 1280, height: 860 }) {
  const ctx = await b.newContext({ viewport, locale: "ja-JP" });
  const p = await ctx.newPage();
  p.foreign = [];
  p.errors = [];
  await ctx.route("**/*", (route) => {
    const u = new URL(route.request().url());
    if (u.host === server.addr || u.protocol === "data:") return route.continue();
    p.foreign.push(route.request().url());
    return route.abort();
  });
  p.on("pageerror", (e) => p.errors.push(String(e)));
  return p;
}

/// Sends messages to a stream over the ingest websocket from inside the page; returns verdicts.
export async function send(p, server, stream, messages) {
  return p.evaluate(async ({ url, messages }) => new Promise((ok, fail) => {
    const ws = new WebSocket(url);
    const got = [];
    ws.onopen = () => ws.send(JSON.stringify(messages));
    ws.onmessage = (m) => { got.push(JSON.parse(m.data)); if (got.length === messages.length) { ws.close(); ok(got); } };
    ws.onerror = () => fail(new Error("ingest websocket failed"));
  }), { url: `ws://${server.addr}/v1/ingest?stream=${encodeURIComponent(stream)}`, messages });
}

/// GET/POST JSON against the server from node.
export async function api(server, path, method = "GET", body) {
  const r = await fetch(server.url + path, {
    method, headers: { "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, json: await r.json() };
}

export function shotDir() {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return SCREENSHOTS;
}

/// Waits until `fn(arg)`, evaluated in the page, is truthy; polls with `page.evaluate`, which
/// the pages' Content-Security-Policy allows (`page.waitForFunction` compiles its predicate from
/// a string, which a policy without 'unsafe-eval' refuses).
export async function waitFor(p, fn, arg, { timeout = 10000 } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await p.evaluate(fn, arg);
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out waiting for ${fn} (${JSON.stringify(arg)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
