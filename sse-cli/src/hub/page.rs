//! `GET /`: the chat page. It subscribes to the `chat` topic with the
//! browser's `EventSource` and publishes with `fetch`; with a token (for a
//! hub started with `--jwt-key`) it sends it on both.

/// The page, served as is.
pub const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sse hub chat</title>
<style>
  body { font: 16px/1.4 system-ui, sans-serif; max-width: 42em; margin: 2em auto; padding: 0 1em; }
  #log { border: 1px solid #bbb; border-radius: 4px; height: 22em; overflow-y: auto; padding: .5em; }
  #log p { margin: .15em 0; white-space: pre-wrap; }
  #log p.note { color: #888; font-style: italic; }
  form { display: flex; gap: .5em; margin-top: .5em; }
  #text { flex: 1; }
  #state { font-size: .6em; color: #888; vertical-align: middle; }
</style>
</head>
<body>
<h1>chat <span id="state">connecting…</span></h1>
<div id="log" aria-live="polite"></div>
<form id="send">
  <input id="name" placeholder="name" size="8" autocomplete="nickname">
  <input id="text" placeholder="say something" autocomplete="off" autofocus>
  <button>send</button>
</form>
<details><summary>token</summary>
  <p>For a hub started with <code>--jwt-key</code>: a JWT with <code>mercure.publish</code> (and <code>mercure.subscribe</code>) claims.</p>
  <input id="token" size="60" placeholder="eyJ…"> <button id="use-token" type="button">use</button>
</details>
<script>
"use strict";
const topic = "chat";
const hub = "/.well-known/mercure";
const log = document.getElementById("log");
const state = document.getElementById("state");
const tokenInput = document.getElementById("token");
tokenInput.value = localStorage.getItem("sse-chat-token") || "";
let source = null;

function line(text, note) {
  const p = document.createElement("p");
  p.textContent = text;
  if (note) p.className = "note";
  log.append(p);
  log.scrollTop = log.scrollHeight;
}

function connect() {
  if (source) source.close();
  const url = new URL(hub, location.href);
  url.searchParams.append("topic", topic);
  if (tokenInput.value) url.searchParams.append("authorization", tokenInput.value);
  source = new EventSource(url);
  source.onopen = () => { state.textContent = "live"; };
  source.onerror = () => { state.textContent = "reconnecting…"; };
  source.onmessage = (e) => line(e.data);
  source.addEventListener("sse-lost", () => line("(some messages may have been missed)", true));
}

document.getElementById("send").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = document.getElementById("text");
  const name = document.getElementById("name").value.trim() || "someone";
  if (!text.value.trim()) return;
  const body = new URLSearchParams({ topic, data: name + ": " + text.value });
  const headers = {};
  if (tokenInput.value) headers.Authorization = "Bearer " + tokenInput.value;
  const response = await fetch(hub, { method: "POST", body, headers });
  if (response.ok) text.value = "";
  else line("(not sent: " + response.status + " " + (await response.text()).trim() + ")", true);
});

document.getElementById("use-token").addEventListener("click", () => {
  localStorage.setItem("sse-chat-token", tokenInput.value);
  connect();
});

connect();
</script>
</body>
</html>
"#;
