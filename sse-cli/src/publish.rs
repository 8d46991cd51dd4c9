//! `sse publish HUB_URL --topic T --data D`: publishes one update to a
//! Mercure hub (this project's `sse hub` or any other) and prints its id.

use std::fmt;
use std::io::{self, Read};
use std::time::Duration;

use bytes::BytesMut;
use clap::Args;
use sse_driver::rt::{BoxTransport, Runtime};
use sse_proto::http1::{BodyDecoder, Request, ResponseParser, Scheme, Url};
use sse_tokio::rt::Tokio;

/// The long help of `sse publish`.
pub const LONG_ABOUT: &str = "Publish one update to a Mercure hub and print the id it was given. \
HUB_URL is the hub's address (`http://127.0.0.1:8080`) or its full publish URL \
(`http://host/.well-known/mercure`). The update is sent as a form (topic, data, type, id, retry, \
private), with the token, if any, as `Authorization: Bearer`.

Exit status: 0 when the hub accepted the update (its id is printed); 1 otherwise, with the hub's \
status and answer on stderr.

https: certificates are checked against the system's trusted ones; SSL_CERT_FILE (a PEM bundle) \
or SSL_CERT_DIR replace them, to trust a private certificate authority.";

/// Arguments of `sse publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The hub: its base URL or its publish URL (http or https).
    #[arg(value_name = "HUB_URL")]
    hub: String,

    /// A topic of the update (repeatable; the first is canonical).
    #[arg(long = "topic", short = 't', value_name = "T", required = true)]
    topics: Vec<String>,

    /// The payload; `-` reads it from stdin.
    #[arg(long, short = 'd', value_name = "D", default_value = "")]
    data: String,

    /// The event type (`event:`).
    #[arg(long = "type", value_name = "X")]
    event_type: Option<String>,

    /// The event id (the hub assigns one when left out).
    #[arg(long, value_name = "I")]
    id: Option<String>,

    /// The reconnection time to send with the event, in milliseconds.
    #[arg(long, value_name = "MS")]
    retry: Option<u64>,

    /// Only subscribers authorized for one of the topics receive it.
    #[arg(long)]
    private: bool,

    /// A JWT with a `mercure.publish` claim (for hubs that require one).
    #[arg(long, value_name = "JWT")]
    token: Option<String>,
}

/// Why `sse publish` failed.
#[derive(Debug)]
pub enum Error {
    /// The URL or an argument is unusable.
    Usage(String),
    /// The hub could not be reached, or the connection failed.
    Io(io::Error),
    /// The hub answered something unreadable.
    Protocol(String),
    /// The hub refused the update.
    Refused(u16, String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(e) => f.write_str(e),
            Error::Io(e) => write!(f, "cannot reach the hub: {e}"),
            Error::Protocol(e) => write!(f, "the hub's answer is not valid HTTP: {e}"),
            Error::Refused(status, body) => {
                let body = crate::output::escape_controls(body.trim());
                write!(f, "the hub refused the update ({status}): {body}")
            }
        }
    }
}

/// Runs `sse publish`.
pub fn run(args: &PublishArgs) -> Result<(), Error> {
    let mut url =
        Url::parse(&args.hub).map_err(|e| Error::Usage(format!("{:?}: {e}", args.hub)))?;
    if url.scheme() == Scheme::Https && !cfg!(feature = "rustls") {
        return Err(Error::Usage(
            "https needs TLS, which this build of sse leaves out (its `rustls` feature)".into(),
        ));
    }
    if url.path() == "/" || url.path().is_empty() {
        url = url
            .join("/.well-known/mercure")
            .map_err(|e| Error::Usage(e.to_string()))?;
    }
    let data = if args.data == "-" {
        let mut data = String::new();
        io::stdin()
            .read_to_string(&mut data)
            .map_err(|e| Error::Usage(format!("cannot read the data from stdin: {e}")))?;
        data
    } else {
        args.data.clone()
    };
    let mut form = form_urlencoded::Serializer::new(String::new());
    for topic in &args.topics {
        form.append_pair("topic", topic);
    }
    form.append_pair("data", &data);
    if let Some(t) = &args.event_type {
        form.append_pair("type", t);
    }
    if let Some(id) = &args.id {
        form.append_pair("id", id);
    }
    if let Some(ms) = args.retry {
        form.append_pair("retry", &ms.to_string());
    }
    if args.private {
        form.append_pair("private", "on");
    }
    let body = form.finish();

    let mut request = Request::new("POST", url.clone()).map_err(|e| Error::Usage(e.to_string()))?;
    request
        .header("Content-Type", "application/x-www-form-urlencoded")
        .map_err(|e| Error::Usage(e.to_string()))?;
    if let Some(token) = &args.token {
        request
            .header("Authorization", format!("Bearer {token}"))
            .map_err(|_| Error::Usage("the token holds characters a header cannot carry".into()))?;
    }
    request.content_length(Some(body.len() as u64));
    let mut head = BytesMut::new();
    request.encode(&mut head);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Io)?;
    let (status, answer) = runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(30),
            exchange(&url, &head, body.as_bytes()),
        )
        .await
        .map_err(|_| Error::Io(io::ErrorKind::TimedOut.into()))?
    })?;
    if status == 200 {
        println!("{}", crate::output::escape_controls(answer.trim_end()));
        Ok(())
    } else {
        Err(Error::Refused(status, answer))
    }
}

/// Opens a connection to the hub: TCP, and TLS on it for https.
async fn open(url: &Url) -> Result<BoxTransport, Error> {
    let host = url.host().to_owned();
    let tcp = Tokio.connect(host.clone(), url.port()).await;
    let tcp = tcp.map_err(Error::Io)?;
    let socket: BoxTransport = Box::new(tcp);
    if url.scheme() == Scheme::Http {
        return Ok(socket);
    }
    #[cfg(feature = "rustls")]
    {
        let config = sse_driver::rt::TlsConfig::platform_default().map_err(Error::Io)?;
        sse_driver::tls::handshake(socket, host, &config)
            .await
            .map_err(Error::Io)
    }
    #[cfg(not(feature = "rustls"))]
    Err(Error::Usage(format!(
        "https ({host}) needs the `rustls` feature"
    )))
}

/// Sends the request; the status and the body of the answer.
async fn exchange(url: &Url, head: &[u8], body: &[u8]) -> Result<(u16, String), Error> {
    let mut socket = open(url).await?;
    sse_driver::rt::write_all(&mut socket, head)
        .await
        .map_err(Error::Io)?;
    sse_driver::rt::write_all(&mut socket, body)
        .await
        .map_err(Error::Io)?;
    let mut buf = BytesMut::with_capacity(4096);
    let mut parser = ResponseParser::new();
    let response = loop {
        if sse_driver::rt::read_buf(&mut socket, &mut buf)
            .await
            .map_err(Error::Io)?
            == 0
        {
            return Err(Error::Protocol(
                "the connection closed before a response".into(),
            ));
        }
        if let Some(head) = parser
            .parse_buf(&mut buf)
            .map_err(|e| Error::Protocol(e.to_string()))?
        {
            break head;
        }
    };
    let kind = response
        .body_kind("POST")
        .map_err(|e| Error::Protocol(e.to_string()))?;
    let mut decoder = BodyDecoder::new(kind);
    let mut answer = Vec::new();
    loop {
        while let Some(piece) = decoder
            .decode(&mut buf)
            .map_err(|e| Error::Protocol(e.to_string()))?
        {
            answer.extend_from_slice(&piece);
            if answer.len() > 1 << 20 {
                return Err(Error::Protocol("the answer is over 1 MiB".into()));
            }
        }
        if decoder.is_done() {
            break;
        }
        if sse_driver::rt::read_buf(&mut socket, &mut buf)
            .await
            .map_err(Error::Io)?
            == 0
        {
            decoder
                .handle_eof()
                .map_err(|e| Error::Protocol(e.to_string()))?;
            while let Some(piece) = decoder
                .decode(&mut buf)
                .map_err(|e| Error::Protocol(e.to_string()))?
            {
                answer.extend_from_slice(&piece);
            }
            break;
        }
    }
    Ok((
        response.status(),
        String::from_utf8_lossy(&answer).into_owned(),
    ))
}
