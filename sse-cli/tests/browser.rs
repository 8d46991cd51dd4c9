//! The hub in a real browser: scripts in `tests/browser` drive headless
//! Chromium (Debian's `/usr/bin/chromium`, or `$CHROMIUM`) with
//! playwright-core against a hub started here.
//!
//! - `chat.mjs`: two pages chat; then their connections are cut while
//!   messages are published, and each page must show every missed message
//!   exactly once after it reconnects.
//! - `h2.mjs`: one page's twelve EventSources over https and HTTP/2.
//! - `mercure.mjs`: both Mercure generations' selectors, tokens and private
//!   updates, from one page against one hub.
//!
//! Needs Node.js, `npm ci` in `tests/browser` (done here when
//! `node_modules` is missing) and Chromium; a missing piece fails the test
//! with what to install.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod common;

use common::hub::Hub;
use common::pki::Pki;
use common::run::{npm_ci, require, run_bounded, run_client};
use common::token::{CONFORMANCE_KEY, DRAFT08_FLAGS, conformance_token, token};
use serde_json::json;

/// The scripts' directory and Chromium's path, once Node.js, Chromium and
/// playwright-core are there (installed by `npm ci` when missing).
fn browser_setup() -> (PathBuf, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium not found at {chromium}: install Debian's `chromium` package (or set CHROMIUM)"
    );
    require("node", "Node.js (Debian: `apt-get install nodejs npm`)");
    npm_ci(&dir, "playwright-core");
    (dir, chromium)
}

#[test]
fn the_chat_page_works_in_chromium_and_catches_up_after_a_cut() {
    let (dir, chromium) = browser_setup();

    let hub = Hub::for_clients();
    run_client(
        Command::new("node")
            .arg("chat.mjs")
            .current_dir(&dir)
            .env("CHROMIUM", &chromium),
        &hub,
        Duration::from_secs(90),
        "exactly once",
    );
}

#[test]
fn twelve_event_sources_of_one_page_all_receive_over_https_and_http2() {
    let (dir, chromium) = browser_setup();

    let pki = Pki::new();
    let hub = Hub::start(&[
        "--tls-cert",
        pki.cert_file.to_str().unwrap(),
        "--tls-key",
        pki.key_file.to_str().unwrap(),
    ]);
    let origin = format!("https://localhost:{}", hub.addr.port());
    let limit = Duration::from_secs(90);
    let (status, output) = run_bounded(
        Command::new("node")
            .arg("h2.mjs")
            .current_dir(&dir)
            .env("CHROMIUM", &chromium)
            .env("HTTPS_HUB_URL", &origin),
        limit,
    );
    assert!(
        status.success(),
        "h2.mjs failed ({status}):\n{output}\nhub log:\n{}",
        hub.log_text()
    );
    assert!(
        output.contains("12 of 12 EventSources received over h2"),
        "{output}"
    );
}

#[test]
fn both_mercure_generations_select_and_keep_private_updates_in_chromium() {
    let (dir, chromium) = browser_setup();

    // One hub for both generations, as Mercure's conformance suites run.
    let hub = Hub::start(&DRAFT08_FLAGS);
    let legacy = token(
        json!({"mercure": {"publish": ["*"], "subscribe": ["*"]}}),
        CONFORMANCE_KEY,
    );
    run_client(
        Command::new("node")
            .arg("mercure.mjs")
            .current_dir(&dir)
            .env("CHROMIUM", &chromium)
            .env("LEGACY_TOKEN", legacy)
            .env("ACCESS_TOKEN", conformance_token()),
        &hub,
        Duration::from_secs(120),
        "21 of 21 cases passed",
    );
}
