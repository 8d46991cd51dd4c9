// The hub as seen by the `eventsource` package (a WHATWG-compliant
// EventSource for Node.js): live events with their ids, types and data,
// then an automatic reconnect after the connection is cut, resumed with
// Last-Event-ID, that brings each missed event exactly once and in order.
//
// Usage: HUB_URL=http://127.0.0.1:PORT node eventsource.mjs
// The EventSource reaches the hub through a TCP proxy started here, which
// is what gets cut; publishes go to the hub directly. The hub should run
// with a short `--retry` so that the client comes back quickly.

import { EventSource } from "eventsource";
import { CuttableRelay, hub, publish, run, same, waitFor } from "../common/harness.mjs";

const topic = "https://example.com/clients/eventsource";
const log = (text) => console.log(`[eventsource] ${text}`);

/** The value of a request header in a raw request head, or null. */
function headerOf(head, name) {
  for (const line of head.split("\r\n").slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name.toLowerCase()) {
      return line.slice(colon + 1).trim();
    }
  }
  return null;
}

async function main() {
  const relay = new CuttableRelay(hub);
  await relay.start();
  const url = new URL("/.well-known/mercure", `http://127.0.0.1:${relay.port}`);
  url.searchParams.set("topic", topic);
  log(`subscribing through ${url.origin} -> ${hub.origin}`);

  const received = [];
  const states = [];
  const es = new EventSource(url);
  const keep = (event) =>
    received.push({ type: event.type, id: event.lastEventId, data: event.data });
  es.onmessage = keep;
  es.addEventListener("greeting", keep);
  es.onopen = () => states.push("open");
  es.onerror = () => states.push("error");
  try {
    await waitFor("the stream to open", () => es.readyState === EventSource.OPEN || states.join());

    // Live events: a named one with the publisher's id, a multi-line one
    // and a non-ASCII one with ids the hub assigns.
    const expected = [];
    const greeting = { type: "greeting", id: "es-1", data: "hello, named event" };
    const named = await publish(topic, greeting);
    if (named !== "es-1") throw new Error(`the hub did not keep the publisher's id: ${named}`);
    expected.push(greeting);
    const lines = "first line\nsecond line\r\nthird line\r\n\n  indented";
    let id = await publish(topic, { data: lines });
    expected.push({ type: "message", id, data: "first line\nsecond line\nthird line\n\n  indented" });
    const text = "non-ASCII: héllo wörld ✓ 日本語 😀";
    id = await publish(topic, { data: text });
    expected.push({ type: "message", id, data: text });
    await waitFor("3 live events", () => received.length >= 3 || JSON.stringify(received));
    same(received, expected, "live events");
    log("live events arrived with their ids, types and exact data");

    // Cut the client off; publish meanwhile; restore.
    const lastBeforeCut = id;
    const connectionsBefore = relay.requests.length;
    await relay.cut();
    await waitFor("the client to notice the cut", () =>
      es.readyState === EventSource.CONNECTING || `readyState ${es.readyState}`,
    );
    for (const n of [1, 2, 3]) {
      const data = `missed ${n}`;
      expected.push({ type: "message", id: await publish(topic, { data }), data });
    }
    log("published 3 events while the client was cut off");
    await relay.start();

    await waitFor(
      "the client to reconnect",
      () => es.readyState === EventSource.OPEN || `readyState ${es.readyState}`,
    );
    await waitFor("the missed events", () => received.length >= 6 || JSON.stringify(received));
    // A live event after the catch-up: any duplicate of a replayed event
    // would come before it.
    const after = "live again";
    expected.push({ type: "message", id: await publish(topic, { data: after }), data: after });
    await waitFor("the live event after the reconnect", () =>
      received.some((e) => e.data === after) || JSON.stringify(received),
    );
    same(received, expected, "every event, once each, in order");

    const resumed = relay.requests.slice(connectionsBefore);
    const cursors = resumed.map((r) => headerOf(r.head, "Last-Event-ID"));
    if (resumed.length === 0 || !cursors.every((c) => c === lastBeforeCut)) {
      throw new Error(
        `the reconnects sent Last-Event-ID ${JSON.stringify(cursors)}, expected ${lastBeforeCut}`,
      );
    }
    log(`reconnected by itself with Last-Event-ID: ${lastBeforeCut}`);
    log("ok: every missed event arrived exactly once, in order");
  } finally {
    es.close();
  }
}

run("eventsource", 40000, main);
