//! The library behind the `sse` command line: each subcommand's arguments
//! and its `run` function, used by the `sse` binary (`src/main.rs`).
//!
//! The hub itself is the `sse-hub` library; this crate holds what makes it
//! a command (flags, runtimes, signals, logging, the page). It has no
//! stable interface of its own.

pub mod decode;
// The flags' doc comments are their `--help` texts, written for a terminal
// (URLs as they are typed).
#[allow(rustdoc::bare_urls)]
pub mod hub;
pub mod listen;
mod output;
pub mod publish;
