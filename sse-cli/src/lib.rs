//! The library behind the `sse` command line: each subcommand's arguments
//! and its `run` function, used by the `sse` binary (`src/main.rs`).
//!
//! It is a library so that the fuzz targets and the tests can reach the
//! hub's request handling without a running process (see
//! `hub::fuzz`); it has no stable interface of its own.

pub mod decode;
// The flags' doc comments are their `--help` texts, written for a terminal
// (URLs as they are typed).
#[allow(rustdoc::bare_urls)]
pub mod hub;
pub mod listen;
mod output;
pub mod publish;
