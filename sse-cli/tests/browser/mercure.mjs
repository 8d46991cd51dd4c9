// Both Mercure generations from one Chromium page against one running hub:
// for each case the page opens an EventSource with the case's selectors
// (0.x: `topic=`, exact strings and RFC 6570 URI templates; draft-08:
// `match=` and `match_urlpattern=`), publishes with `fetch` and the
// generation's token (a 0.x `mercure` claim, or an RFC 9068 access token),
// and checks whether the update arrives. Whether an update that must not
// arrive did is settled by a marker published right after it on a topic the
// EventSource also selects: a stream keeps publish order, so once the
// marker is in, the update would have been too. Besides the marker, a case
// must see its update exactly once, or nothing at all.
//
// Usage: HUB_URL=http://127.0.0.1:PORT LEGACY_TOKEN=... ACCESS_TOKEN=... node mercure.mjs

import { chromium } from "playwright-core";

const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const origin = process.env.HUB_URL;
const tokens = { legacy: process.env.LEGACY_TOKEN, access: process.env.ACCESS_TOKEN };
const step = (text) => console.log(`[mercure] ${text}`);

/** A fresh random word, so that runs and cases never see each other's updates. */
const fresh = () => Math.random().toString(36).slice(2, 12);

/**
 * The cases: `selectors` are [parameter, value] pairs; `topics` are the
 * update's; `expected` whether the anonymous subscriber receives it.
 */
function cases() {
  const a = fresh();
  const b = fresh();
  const base = "https://example.org/shelf";
  const legacy = [
    { name: "exact string", selectors: [["topic", `s-${a}`]], topics: [`s-${a}`], expected: true },
    { name: "second topic of the update", selectors: [["topic", `t-${a}`]], topics: [`other-${b}`, `t-${a}`], expected: true },
    { name: "second selector", selectors: [["topic", "nothing-here"], ["topic", `u-${a}`]], topics: [`u-${a}`], expected: true },
    { name: "URL", selectors: [["topic", `${base}/${a}`]], topics: [`${base}/${a}`], expected: true },
    { name: "URI template", selectors: [["topic", `${base}/{book}`]], topics: [`${base}/${b}`], expected: true },
    { name: "URI template, reserved expansion", selectors: [["topic", `https://example.org/{+path}`]], topics: [`https://example.org/x/${a}/y`], expected: true },
    { name: "other string", selectors: [["topic", `v-${a}`]], topics: [`w-${a}`], expected: false },
    { name: "other URL", selectors: [["topic", `${base}/${a}`]], topics: [`${base}/${b}`], expected: false },
    { name: "URI template of another path", selectors: [["topic", "https://example.org/desk/{book}"]], topics: [`${base}/${a}`], expected: false },
    { name: "private, exact", selectors: [["topic", `p-${a}`]], topics: [`p-${a}`], private: true, expected: false },
    { name: "private, URI template", selectors: [["topic", `${base}/{book}`]], topics: [`${base}/${a}`], private: true, expected: false },
  ].map((c) => ({ ...c, generation: "0.x", token: "legacy" }));
  const draft = [
    { name: "match, exact", selectors: [["match", `m-${a}`]], topics: [`m-${a}`], expected: true },
    { name: "match_exact", selectors: [["match_exact", `e-${a}`]], topics: [`e-${a}`], expected: true },
    { name: "second selector", selectors: [["match", "nothing-here"], ["match", `n-${a}`]], topics: [`n-${a}`], expected: true },
    { name: "URL pattern", selectors: [["match_urlpattern", `${base}/:book`]], topics: [`${base}/${a}`], expected: true },
    { name: "URL pattern with a wildcard", selectors: [["match_urlpattern", "https://example.org/*"]], topics: [`https://example.org/a/${b}`], expected: true },
    { name: "other string", selectors: [["match", `o-${a}`]], topics: [`q-${a}`], expected: false },
    { name: "URL pattern of another path", selectors: [["match_urlpattern", "https://example.org/desk/:book"]], topics: [`${base}/${a}`], expected: false },
    { name: "a template is not a pattern", selectors: [["match", `${base}/{book}`]], topics: [`${base}/${a}`], expected: false },
    { name: "private, exact", selectors: [["match", `r-${a}`]], topics: [`r-${a}`], private: true, expected: false },
    { name: "private, URL pattern", selectors: [["match_urlpattern", `${base}/:book`]], topics: [`${base}/${b}`], private: true, expected: false },
  ].map((c) => ({ ...c, generation: "draft-08", token: "access" }));
  return [...legacy, ...draft];
}

/** Runs one case in the page; returns what happened. */
async function runCase(page, c, token) {
  return page.evaluate(
    async ({ c, token, marker }) => {
      const hub = "/.well-known/mercure";
      const url = new URL(hub, window.location.origin);
      for (const [name, value] of c.selectors) url.searchParams.append(name, value);
      // The marker rides on the same EventSource, selected by the
      // generation's own exact parameter.
      url.searchParams.append(c.generation === "0.x" ? "topic" : "match", marker);
      const id = `id-${marker}`;
      const data = `update for\n\n${c.name}`;
      const source = new EventSource(url);
      try {
        const seen = [];
        const markerSeen = new Promise((resolve) => {
          source.onmessage = (e) => {
            seen.push({ id: e.lastEventId, data: e.data });
            if (e.data === "marker") resolve();
          };
        });
        await Promise.race([
          new Promise((resolve) => (source.onopen = resolve)),
          new Promise((_, reject) => setTimeout(() => reject(new Error("never opened")), 10000)),
        ]);
        const publish = async (fields) => {
          const body = new URLSearchParams();
          for (const [name, value] of fields) body.append(name, value);
          const response = await fetch(hub, {
            method: "POST",
            headers: { Authorization: `Bearer ${token}` },
            body,
          });
          return { status: response.status, type: response.headers.get("Content-Type"), text: await response.text() };
        };
        const fields = c.topics.map((t) => ["topic", t]);
        fields.push(["id", id], ["data", data]);
        if (c.private) fields.push(["private", "on"]);
        const answer = await publish(fields);
        const markerAnswer = await publish([["topic", marker], ["data", "marker"]]);
        await Promise.race([
          markerSeen,
          new Promise((_, reject) => setTimeout(() => reject(new Error(`no marker (${markerAnswer.status})`)), 10000)),
        ]);
        // Everything but the marker: the update once, or nothing at all.
        const others = seen.filter((e) => e.data !== "marker");
        const received = others.length === 1 && others[0].id === id && others[0].data === data;
        const nothing = others.length === 0;
        return { received, nothing, others, answer, id };
      } finally {
        source.close();
      }
    },
    { c, token, marker: `marker-${fresh()}` },
  );
}

async function main() {
  if (!origin || !tokens.legacy || !tokens.access) throw new Error("set HUB_URL, LEGACY_TOKEN and ACCESS_TOKEN");
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--disable-sync"],
  });
  const failures = [];
  let passed = 0;
  try {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${origin}/`);
    for (const c of cases()) {
      const label = `${c.generation}: ${c.name}`;
      try {
        const { received, nothing, others, answer, id } = await runCase(page, c, tokens[c.token]);
        const problems = [];
        if (c.expected ? !received : !nothing)
          problems.push(`${c.expected ? "not received once" : "received"}: ${JSON.stringify(others)}`);
        if (answer.status !== 200) problems.push(`publish answered ${answer.status}: ${answer.text}`);
        else {
          if (!/^text\/plain(;|$)/.test(answer.type ?? "")) problems.push(`publish answer typed ${answer.type}`);
          if (answer.text !== id) problems.push(`publish answered the id ${answer.text}, not ${id}`);
        }
        if (problems.length) failures.push(`${label}: ${problems.join("; ")}`);
        else passed += 1;
        step(`${label}: ${problems.length ? problems.join("; ") : "ok"}`);
      } catch (e) {
        failures.push(`${label}: ${e.message}`);
        step(`${label}: ${e.message}`);
      }
    }
  } finally {
    await browser.close();
  }
  const total = passed + failures.length;
  if (failures.length) {
    console.error(`${failures.length} of ${total} cases failed:\n${failures.join("\n")}`);
    process.exit(1);
  }
  step(`${passed} of ${total} cases passed`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
