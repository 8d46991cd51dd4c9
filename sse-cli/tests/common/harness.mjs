// What the Node.js scripts that drive the hub share: the hub's address, a
// TCP relay to it that can be cut, publishing, bounded waits, and running a
// script's `main` within a time limit. Node's own modules only, so that any
// script directory can import it whatever packages it installs.

import net from "node:net";

/** The hub the script drives: `$HUB_URL`, else the hub's default address. */
export const hub = new URL(process.env.HUB_URL ?? "http://127.0.0.1:8080");

/**
 * A TCP relay to `target` that can be cut (every connection dropped and the
 * port closed) and restored on the same port. It remembers the request head
 * of each connection it relays, to see what the client sent.
 */
export class CuttableRelay {
  constructor(target) {
    this.target = target;
    this.port = 0;
    this.server = null;
    this.open = new Set();
    this.requests = [];
  }

  /** Listens on 127.0.0.1 (a free port the first time, then the same). */
  start() {
    return new Promise((resolve, reject) => {
      const server = net.createServer((inbound) => this.relay(inbound));
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => {
        this.port = server.address().port;
        this.server = server;
        resolve();
      });
    });
  }

  relay(inbound) {
    const outbound = net.connect(Number(this.target.port), this.target.hostname);
    const record = { head: "" };
    this.requests.push(record);
    inbound.on("data", (chunk) => {
      if (!record.head.includes("\r\n\r\n")) record.head += chunk.toString("latin1");
    });
    for (const socket of [inbound, outbound]) {
      this.open.add(socket);
      socket.on("close", () => this.open.delete(socket));
      socket.on("error", () => socket.destroy());
    }
    inbound.on("close", () => outbound.destroy());
    outbound.on("close", () => inbound.destroy());
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  }

  /** Drops every connection and closes the port; resolves once closed. */
  cut() {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server = null;
      for (const socket of this.open) socket.destroy();
    });
  }
}

/**
 * Publishes an update to `topic` with a form POST of `fields` (`data`,
 * `id`, `type`, ...); resolves to the event's id, and fails unless the hub
 * answers 200.
 */
export async function publish(topic, fields) {
  const response = await fetch(new URL("/.well-known/mercure", hub), {
    method: "POST",
    body: new URLSearchParams({ topic, ...fields }),
    signal: AbortSignal.timeout(5000),
  });
  const body = await response.text();
  if (response.status !== 200) throw new Error(`publish answered ${response.status}: ${body}`);
  return body.trim();
}

/**
 * Polls `check` (which may be async) until it returns `true`; anything else
 * it returns says what it sees instead, for the error after `timeoutMs`.
 */
export async function waitFor(what, check, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await check();
    if (result === true) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${result}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Fails unless `got` and `expected` are the same as JSON. */
export function same(got, expected, what) {
  const [g, e] = [JSON.stringify(got), JSON.stringify(expected)];
  if (g !== e) throw new Error(`${what}:\n  got      ${g}\n  expected ${e}`);
}

/**
 * Runs `main` and exits: 0 when it resolves, 1 when it fails, 2 when it
 * takes more than `limitMs`. Failures are reported on stderr under `[tag]`.
 */
export function run(tag, limitMs, main) {
  const timer = setTimeout(() => {
    console.error(`[${tag}] timed out`);
    process.exit(2);
  }, limitMs);
  main()
    .then(() => {
      clearTimeout(timer);
      process.exit(0);
    })
    .catch((e) => {
      console.error(`[${tag}] FAILED: ${e.stack ?? e}`);
      process.exit(1);
    });
}
