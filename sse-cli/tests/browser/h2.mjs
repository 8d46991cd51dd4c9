// One page, twelve EventSources, over https and HTTP/2: a browser holds at
// most six HTTP/1.1 connections per origin, so over HTTP/1.1 half of them
// would never open and the page's own publish would wait behind them. Over
// HTTP/2 they are twelve streams of one connection: each opens, the page
// publishes to each from the same page, and each receives its message.
//
// Usage: HTTPS_HUB_URL=https://localhost:PORT node h2.mjs
// The hub's certificate comes from a throwaway authority the browser does
// not know: the context ignores certificate errors (nothing else differs).

import { chromium } from "playwright-core";

const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const origin = process.env.HTTPS_HUB_URL;
const step = (text) => console.log(`[h2] ${text}`);

async function main() {
  if (!origin) throw new Error("set HTTPS_HUB_URL");
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-quic",
      "--no-first-run",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    page.on("console", (m) => step(`console: ${m.text()}`));
    await page.goto(`${origin}/`);
    const result = await page.evaluate(async () => {
      const hub = "/.well-known/mercure";
      const count = 12;
      const withTimeout = (promise, ms, what) =>
        Promise.race([
          promise,
          new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)),
        ]);
      const sources = [];
      const opened = [];
      const received = [];
      for (let i = 0; i < count; i++) {
        const source = new EventSource(`${hub}?topic=${encodeURIComponent(`room-${i}`)}`);
        sources.push(source);
        opened.push(new Promise((resolve) => source.addEventListener("open", resolve, { once: true })));
        received.push(
          new Promise((resolve) =>
            source.addEventListener("message", (e) => {
              if (e.data === `hello ${i}`) resolve(e.data);
            }),
          ),
        );
      }
      await withTimeout(Promise.all(opened), 15000, "every EventSource open");
      for (let i = 0; i < count; i++) {
        const body = new URLSearchParams({ topic: `room-${i}`, data: `hello ${i}` });
        const answer = await withTimeout(fetch(hub, { method: "POST", body }), 15000, `publish ${i}`);
        if (!answer.ok) throw new Error(`publish ${i}: ${answer.status} ${await answer.text()}`);
      }
      const got = await withTimeout(Promise.all(received), 15000, "every message");
      const protocol = performance.getEntriesByType("navigation")[0]?.nextHopProtocol;
      const streams = performance
        .getEntriesByType("resource")
        .filter((r) => r.name.includes(hub))
        .map((r) => r.nextHopProtocol);
      for (const source of sources) source.close();
      return { got: got.length, protocol, streams };
    });
    step(`page protocol ${result.protocol}, resource protocols ${JSON.stringify(result.streams)}`);
    if (result.protocol !== "h2") throw new Error(`the page was not served over h2: ${result.protocol}`);
    if (result.got !== 12) throw new Error(`only ${result.got} of 12 received`);
    console.log(`12 of 12 EventSources received over ${result.protocol}`);
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
