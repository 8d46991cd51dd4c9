//! `sse listen URL`: a reconnecting `EventSource` client on the terminal,
//! built on `sse-tokio`. Events go to stdout (the JSON lines of
//! `sse decode`, or `--pretty`), reconnection notices to stderr.

use std::fmt;
use std::io::{self, Read, Write};
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use sse_proto::http1::reason_phrase;
use sse_tokio::{ClientConfig, CloseReason, Event, EventSource, ReconnectReason};

use crate::output::{escape_controls, write_event, write_pretty_event};

/// The long help of `sse listen` (`sse listen --help`).
pub const LONG_ABOUT: &str = "Connect to URL as a browser's EventSource does and print every \
event it sends, one JSON object per line (as `sse decode` prints them):

  {\"type\":\"message\",\"data\":\"line 1\\nline 2\",\"id\":\"42\"}

or, with --pretty, as `[type] id=42` followed by the data lines.

When the connection drops, sse listen waits the server's `retry` time (3 s until the server sets \
one; with exponential backoff and jitter after repeated failures) and reconnects, sending the \
last event ID as `Last-Event-ID`. Each reconnection is reported on stderr.

Exit status: 0 when the server answers 204 No Content, after --max-events events, or when the \
stream ends with --no-reconnect; 1 on a response that is not a usable event stream (a status \
other than 200, a Content-Type other than text/event-stream: the first 8 KiB of what the server \
said are printed after the reason) or any other error, which is reported on stderr.

https: certificates are checked against the system's trusted ones; SSL_CERT_FILE (a PEM bundle) \
or SSL_CERT_DIR replace them, to trust a private certificate authority. Proxies: HTTPS_PROXY, \
HTTP_PROXY (also in lower case), ALL_PROXY and NO_PROXY are honoured as curl does (https through \
a CONNECT tunnel; user:password@ in the proxy URL for Basic credentials).";

/// Arguments of `sse listen`.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// The event stream's URL, such as https://host:port/path (the port may be left out).
    #[arg(value_name = "URL")]
    url: String,

    /// Print events for people (`[type] id=…` and the data lines) instead of JSON lines.
    #[arg(long)]
    pretty: bool,

    /// Resume a stream: send this as `Last-Event-ID` from the first request on.
    #[arg(long, value_name = "ID")]
    last_event_id: Option<String>,

    /// Send this request header on every attempt, written 'Name: value' (repeatable).
    #[arg(long = "header", short = 'H', value_name = "'NAME: VALUE'", value_parser = parse_header)]
    headers: Vec<(String, String)>,

    /// Exit (status 0) after printing N events.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_events: Option<u64>,

    /// Reconnect when nothing at all (not even a heartbeat comment) arrives for this long, e.g.
    /// 500ms, 30s, 2m, 1h.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,

    /// The request method [default: GET, or POST with --body].
    #[arg(long, short = 'X', value_name = "METHOD")]
    method: Option<String>,

    /// Send DATA as the request body on every attempt; `-` reads it from stdin.
    #[arg(long, short = 'd', value_name = "DATA")]
    body: Option<String>,

    /// Do not reconnect: exit when the first stream ends (status 0) or fails (status 1).
    #[arg(long)]
    no_reconnect: bool,
}

/// Parses `--header 'Name: value'`.
fn parse_header(value: &str) -> Result<(String, String), String> {
    match value.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err("a header must be written 'Name: value'".to_owned()),
    }
}

/// Parses a duration such as `500ms`, `30s`, `2m`, `1h` or `1.5s` (a bare
/// number is seconds).
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let err = || {
        format!("{value:?} is not a duration: write a number and a unit, e.g. 500ms, 30s, 2m, 1h")
    };
    let value = value.trim();
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().map_err(|_| err())?;
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" | "sec" | "secs" => 1.0,
        "m" | "min" | "mins" => 60.0,
        "h" => 3600.0,
        _ => return Err(err()),
    };
    let duration = Duration::try_from_secs_f64(number * scale).map_err(|_| err())?;
    if duration.is_zero() {
        return Err("the timeout must be longer than zero".to_owned());
    }
    Ok(duration)
}

/// Why `sse listen` failed.
#[derive(Debug)]
pub enum Error {
    /// The client could not start (a bad URL or header, an https URL
    /// without the `rustls` feature).
    Start(sse_tokio::Error),
    /// The event source failed for good.
    Source(sse_tokio::Error),
    /// Reading the body from stdin failed.
    Stdin(io::Error),
    /// The async runtime could not start.
    Runtime(io::Error),
    /// Writing stdout failed.
    Write(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Start(err) => write!(f, "cannot listen: {err}"),
            Error::Source(err) => describe(err, f),
            Error::Stdin(err) => write!(f, "could not read the body from standard input: {err}"),
            Error::Runtime(err) => write!(f, "could not start the async runtime: {err}"),
            Error::Write(err) => write!(f, "could not write standard output: {err}"),
        }
    }
}

impl Error {
    /// Whether the error is stdout having been closed by its reader, which is
    /// not worth reporting.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Write(err) if err.kind() == io::ErrorKind::BrokenPipe)
    }
}

impl std::error::Error for Error {}

/// One sentence on why the source stopped; for a response that was not
/// an event stream, what the server said follows on the next lines (the
/// first 8 KiB of its body).
fn describe(err: &sse_tokio::Error, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if let sse_tokio::Error::Rejected(response) = err {
        closed(response.reason(), None, f)?;
        let body = response.body_text();
        let body = escape_controls(body.trim_end());
        if !body.is_empty() {
            write!(f, "\n{body}")?;
            if response.is_truncated() {
                write!(
                    f,
                    "\n[the rest of the body is left out: only its first {} bytes are read]",
                    sse_tokio::ERROR_BODY_LIMIT
                )?;
            }
        }
        return Ok(());
    }
    let sse_tokio::Error::Closed { reason, cause } = err else {
        return write!(f, "{err}");
    };
    closed(reason, cause.as_deref(), f)
}

/// Why the source closed, in one sentence.
fn closed(
    reason: &CloseReason,
    cause: Option<&sse_tokio::Error>,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    match reason {
        CloseReason::BadStatus(status) => match reason_phrase(*status) {
            Some(phrase) => write!(f, "the server answered {status} {phrase}; not retrying"),
            None => write!(f, "the server answered status {status}; not retrying"),
        },
        CloseReason::BadContentType(Some(ct)) => write!(
            f,
            "the server sent Content-Type {}, not text/event-stream; not retrying",
            escape_controls(ct)
        ),
        CloseReason::BadContentType(None) => f.write_str(
            "the server sent no Content-Type, where text/event-stream is required; not retrying",
        ),
        CloseReason::UnsupportedUrl => f.write_str("the URL is not an absolute http:// URL"),
        CloseReason::ReconnectDisabled(why) => {
            write!(f, "{}", Lost(why, cause))?;
            f.write_str("; not reconnecting (--no-reconnect)")
        }
        CloseReason::GaveUp { reason, attempts } => write!(
            f,
            "{}; gave up after {attempts} failed reconnects",
            Lost(reason, cause)
        ),
        other => write!(f, "the event source closed: {other}"),
    }
}

/// A lost connection's reason and, if known, the error behind it.
struct Lost<'a>(&'a ReconnectReason, Option<&'a sse_tokio::Error>);

impl fmt::Display for Lost<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            // The error says more than "network error".
            Some(cause) if *self.0 == ReconnectReason::NetworkError => write!(f, "{cause}"),
            Some(cause) => write!(f, "{} ({cause})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

/// `250ms`, `3s`, `1.5s`.
fn format_delay(delay: Duration) -> String {
    let ms = delay.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", delay.as_secs_f64())
    }
}

/// The client configuration the arguments ask for.
fn config(args: &ListenArgs) -> Result<ClientConfig, Error> {
    let body = match args.body.as_deref() {
        None => None,
        Some("-") => {
            let mut buf = Vec::new();
            io::stdin().read_to_end(&mut buf).map_err(Error::Stdin)?;
            Some(Bytes::from(buf))
        }
        Some(data) => Some(Bytes::copy_from_slice(data.as_bytes())),
    };
    let method = match (&args.method, &body) {
        (Some(method), _) => method.clone(),
        (None, Some(_)) => "POST".to_owned(),
        (None, None) => "GET".to_owned(),
    };
    let mut config = ClientConfig::new(args.url.as_str())
        .method(method)
        .idle_timeout(args.timeout);
    for (name, value) in &args.headers {
        config = config.header(name.as_str(), value.as_str());
    }
    if let Some(body) = body {
        config = config.body(body);
    }
    if let Some(id) = &args.last_event_id {
        config = config.last_event_id(id.as_str());
    }
    if args.no_reconnect {
        config = config.no_reconnect();
    }
    Ok(config)
}

/// Runs `sse listen` until the source ends, fails, or `--max-events`.
///
/// # Errors
/// A fatal response or other failure of the source, or an I/O error.
pub fn run(args: &ListenArgs) -> Result<(), Error> {
    let config = config(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async {
        let source = EventSource::new(config).map_err(Error::Start)?;
        listen(args, source).await
    })
}

async fn listen(args: &ListenArgs, mut source: EventSource) -> Result<(), Error> {
    let stdout = io::stdout();
    let mut printed = 0u64;
    while let Some(item) = source.next().await {
        match item {
            Ok(Event::Message(event)) => {
                // Events are printed as they come: flush each one.
                let mut out = stdout.lock();
                if args.pretty {
                    write_pretty_event(&event, &mut out)
                } else {
                    write_event(&event, &mut out)
                }
                .and_then(|()| out.flush())
                .map_err(Error::Write)?;
                printed += 1;
                if args.max_events.is_some_and(|max| printed >= max) {
                    return Ok(());
                }
            }
            Ok(Event::Reconnecting {
                delay,
                reason,
                error,
            }) => {
                eprintln!(
                    "sse listen: {}; reconnecting in {}",
                    Lost(&reason, error.as_ref()),
                    format_delay(delay)
                );
            }
            Ok(_) => {}
            Err(err) => return Err(Error::Source(err)),
        }
    }
    // 204 No Content (the server asked us to stop), or with --no-reconnect
    // the clean end of the one stream.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        for bad in ["", "s", "5x", "-1s", "1..2s", "0s", "1e400s", "ms5"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn headers() {
        assert_eq!(
            parse_header("X-Token:  a: b "),
            Ok(("X-Token".to_owned(), "a: b".to_owned()))
        );
        assert_eq!(
            parse_header("X-Empty:"),
            Ok(("X-Empty".to_owned(), String::new()))
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header(": v").is_err());
    }

    #[test]
    fn delays() {
        assert_eq!(format_delay(Duration::from_millis(250)), "250ms");
        assert_eq!(format_delay(Duration::from_secs(3)), "3s");
        assert_eq!(format_delay(Duration::from_millis(1500)), "1.5s");
    }
}
