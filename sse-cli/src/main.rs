//! The `sse` command line: run a hub, decode, listen to and publish
//! Server-Sent Events.
//!
//! Each subcommand lives in its own module of the `sse_cli` library; `main`
//! parses the arguments with clap and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sse_cli::{decode, hub, listen, publish};

/// Server-Sent Events (`text/event-stream`) tools.
#[derive(Debug, Parser)]
#[command(name = "sse", version, propagate_version = true)]
struct Cli {
    /// The command to run.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands of `sse`.
// Parsed once at start: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the publish/subscribe hub (Mercure protocol): in memory by default, or over Redis.
    #[command(
        long_about = hub::LONG_ABOUT,
        after_help = "Examples:\n  sse hub\n  sse hub --listen 0.0.0.0:8080 --jwt-key \"$KEY\" --anonymous\n  \
sse hub --jwks https://auth.example.com/jwks.json --jwt-audience https://hub.example.com/.well-known/mercure \\\n    \
--jwt-issuer https://auth.example.com --no-legacy-tokens\n  \
sse hub --redis redis://127.0.0.1:6379 --history 50000"
    )]
    Hub(hub::HubArgs),
    /// Decode a `text/event-stream` body read from stdin and print its events as JSON lines.
    #[command(
        long_about = decode::LONG_ABOUT,
        after_help = "Example: sse decode --all < examples/sample.sse"
    )]
    Decode(decode::DecodeArgs),
    /// Connect to an event stream URL, reconnecting as a browser does, and print its events.
    #[command(
        long_about = listen::LONG_ABOUT,
        after_help = "Examples:\n  sse listen http://127.0.0.1:8080/events\n  \
sse listen --pretty --timeout 45s --header 'Authorization: Bearer T' http://host/stream\n  \
echo '{\"q\":1}' | sse listen --body - --header 'Content-Type: application/json' http://host/api"
    )]
    Listen(listen::ListenArgs),
    /// Publish one update to a Mercure hub and print its id.
    #[command(
        long_about = publish::LONG_ABOUT,
        after_help = "Examples:\n  sse publish http://127.0.0.1:8080 --topic chat --data hello\n  \
echo '{\"n\":1}' | sse publish http://hub.example/.well-known/mercure -t orders -d - --token \"$JWT\""
    )]
    Publish(publish::PublishArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Hub(args) => report("hub", hub::run(&args), |_| false),
        Command::Decode(args) => {
            report("decode", decode::run(&args), decode::Error::is_broken_pipe)
        }
        Command::Publish(args) => report("publish", publish::run(&args), |_| false),
        Command::Listen(args) => {
            report("listen", listen::run(&args), listen::Error::is_broken_pipe)
        }
    }
}

/// The exit code for a command's result, with the error (if any) on stderr.
fn report<E: std::fmt::Display>(
    name: &str,
    result: Result<(), E>,
    is_broken_pipe: fn(&E) -> bool,
) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (e.g. `| head -1`): nothing is
        // left to report to, so stop quietly.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sse {name}: error: {err}");
            ExitCode::FAILURE
        }
    }
}
