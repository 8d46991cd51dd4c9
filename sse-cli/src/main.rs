//! The `sse` command line: decode, listen to and publish Server-Sent Events.
//!
//! Each subcommand lives in its own module; `main` parses the arguments with
//! clap and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod decode;

/// Server-Sent Events (`text/event-stream`) tools.
#[derive(Debug, Parser)]
#[command(name = "sse", version, propagate_version = true)]
struct Cli {
    /// The command to run.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands of `sse`.
#[derive(Debug, Subcommand)]
enum Command {
    /// Decode a `text/event-stream` body read from stdin and print its events as JSON lines.
    #[command(
        long_about = decode::LONG_ABOUT,
        after_help = "Example: sse decode --all < examples/sample.sse"
    )]
    Decode(decode::DecodeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (name, result) = match cli.command {
        Command::Decode(args) => ("decode", decode::run(&args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (e.g. `| head -1`): nothing is
        // left to report to, so stop quietly.
        Err(err) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sse {name}: error: {err}");
            ExitCode::FAILURE
        }
    }
}
