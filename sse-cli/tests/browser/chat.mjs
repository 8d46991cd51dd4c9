// Drives the hub's chat page in headless Chromium: two pages chat, then the
// pages' connection to the hub is cut while messages are published, and
// each page must show every missed message exactly once after it
// reconnects (EventSource sends Last-Event-ID; the hub replays).
//
// Usage: HUB_URL=http://127.0.0.1:PORT node chat.mjs
// The pages reach the hub through a TCP proxy started here, which is what
// gets cut; publishes during the cut go to the hub directly.

import { chromium } from "playwright-core";
import { CuttableRelay, hub, publish, run, same, waitFor } from "../common/harness.mjs";

const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const step = (text) => console.log(`[chat] ${text}`);

/** The texts of the page's messages. */
async function messages(page) {
  return page.$$eval("#log p:not(.note)", (ps) => ps.map((p) => p.textContent));
}

async function main() {
  const proxy = new CuttableRelay(hub);
  await proxy.start();
  const origin = `http://127.0.0.1:${proxy.port}`;
  step(`proxy ${origin} -> ${hub.origin}`);

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
    const context = await browser.newContext();
    const [a, b] = [await context.newPage(), await context.newPage()];
    for (const page of [a, b]) {
      page.on("console", (m) => step(`console: ${m.text()}`));
      await page.goto(`${origin}/`);
      await page.waitForSelector("#state:text('live')", { timeout: 15000 });
    }
    step("both pages are live");

    // A message typed in one page appears in the other (and in its own).
    await a.fill("#name", "alice");
    await a.fill("#text", "hello from a");
    await a.click("#send button");
    for (const page of [a, b]) {
      await waitFor("the message in both pages", async () => {
        const got = await messages(page);
        return got.includes("alice: hello from a") || JSON.stringify(got);
      });
    }
    step("a message typed in page a reached page b");

    // Cut the pages' connections; publish meanwhile; restore.
    await proxy.cut();
    for (const page of [a, b]) {
      await waitFor("the pages to notice the cut", async () => {
        const state = await page.textContent("#state");
        return state.startsWith("reconnecting") || state;
      });
    }
    const missed = ["missed 1", "missed 2", "missed 3"];
    for (const data of missed) await publish("chat", { data });
    step("published 3 messages while the pages were cut off");
    await proxy.start();

    for (const [name, page] of [["a", a], ["b", b]]) {
      await waitFor(`page ${name} to catch up`, async () => {
        const got = await messages(page);
        return missed.every((m) => got.includes(m)) || JSON.stringify(got);
      }, 30000);
      // Once each, in order, and nothing shown twice.
      same(await messages(page), ["alice: hello from a", ...missed], `page ${name}'s messages`);
      const state = await page.textContent("#state");
      if (state !== "live") throw new Error(`page ${name} is ${state}`);
    }
    step("both pages reconnected and show each missed message exactly once");

    // Live again after the reconnect.
    await b.fill("#text", "back");
    await b.click("#send button");
    await waitFor("a live message after the reconnect", async () => {
      const got = await messages(a);
      return got.at(-1) === "someone: back" || JSON.stringify(got);
    });
    step("live messages flow again");
  } finally {
    await browser.close();
  }
  step("ok");
}

run("chat", 90000, main);
