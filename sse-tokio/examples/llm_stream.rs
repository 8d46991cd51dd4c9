//! Streams a chat completion from an OpenAI-style API and prints its text as
//! it arrives: one `POST` with `"stream": true`, read as an event stream
//! over a `reqwest::Client`, with reconnecting off.
//!
//! ```sh
//! OPENAI_API_KEY=sk-... cargo run -p sse-tokio --features reqwest --example llm_stream -- \
//!     https://api.openai.com/v1/chat/completions "Write a haiku about rivers"
//! ```
//!
//! The first argument is the chat-completions URL, the second the prompt
//! (a default one otherwise). The key comes from `OPENAI_API_KEY` (sent as
//! `Authorization: Bearer`, left out when unset, for local servers), the
//! model from `OPENAI_MODEL` (default `gpt-4o-mini`). Each event's
//! `choices[0].delta.content` is printed as it comes, up to `data: [DONE]`,
//! then one newline. When the API refuses (a status other than 200), the
//! example prints the API's error message to stderr and exits with status 1.

use std::io::Write;
use std::process::ExitCode;

use serde_json::{Value, json};
use sse_tokio::reqwest::EventSource;
use sse_tokio::{Error, Event};

const DEFAULT_MODEL: &str = "gpt-4o-mini";
const DEFAULT_PROMPT: &str = "Say hello in five words.";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        eprintln!("usage: llm_stream URL [PROMPT]");
        return ExitCode::from(2);
    };
    let prompt = args.next().unwrap_or_else(|| DEFAULT_PROMPT.to_owned());
    let model = std::env::var("OPENAI_MODEL").unwrap_or_else(|_| DEFAULT_MODEL.to_owned());
    let body = json!({
        "model": model,
        "stream": true,
        "messages": [{"role": "user", "content": prompt}],
    });

    let client = reqwest::Client::new();
    let mut request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string());
    if let Ok(key) = std::env::var("OPENAI_API_KEY") {
        request = request.bearer_auth(key);
    }
    let mut events = match EventSource::new(request) {
        Ok(events) => events.configure(|config| config.no_reconnect()),
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };

    let mut stdout = std::io::stdout();
    let mut printed = false;
    while let Some(item) = events.next().await {
        let message = match item {
            Ok(Event::Message(message)) => message,
            Ok(_) => continue,
            Err(error) => {
                if printed {
                    println!();
                }
                eprintln!("{}", describe(&error));
                return ExitCode::FAILURE;
            }
        };
        if message.data() == "[DONE]" {
            break;
        }
        if let Some(text) = delta(message.data()) {
            print!("{text}");
            let _ = stdout.flush();
            printed = true;
        }
    }
    println!();
    ExitCode::SUCCESS
}

/// The text of one completion chunk: `choices[0].delta.content`.
fn delta(data: &str) -> Option<String> {
    let chunk: Value = serde_json::from_str(data).ok()?;
    let content = chunk.pointer("/choices/0/delta/content")?.as_str()?;
    Some(content.to_owned())
}

/// What to tell the user about `error`: for a refusal, the API's own
/// message (`error.message` of its JSON body), else the body, else the
/// status.
fn describe(error: &Error) -> String {
    let Error::Rejected(response) = error else {
        return error.to_string();
    };
    let body = response.body_text();
    let message = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|json| Some(json.pointer("/error/message")?.as_str()?.to_owned()));
    match message {
        Some(message) => message,
        None if !body.trim().is_empty() => body.trim().to_owned(),
        None => format!("the API answered with status {}", response.status()),
    }
}
