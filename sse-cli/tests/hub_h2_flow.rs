//! HTTP/2 flow control against `sse hub --tls-cert --tls-key`, frame by
//! frame: a fan-out larger than the connection's window reaches every
//! stream of a client that keeps the protocol's default windows (64 KiB,
//! as many HTTP/2 libraries do) and gives credit back as it reads.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::WAIT;
use common::h2raw::{DATA, END_HEADERS, END_STREAM, H2, HEADERS, SETTINGS, WINDOW_UPDATE};
use common::hub::Hub;
use common::pki::Pki;

/// Streams on the one connection.
const STREAMS: u32 = 100;

/// Events published to all of them.
const EVENTS: usize = 10;

fn https_hub(pki: &Pki) -> Hub {
    let cert = pki.cert_file.to_str().unwrap();
    let key = pki.key_file.to_str().unwrap();
    Hub::start(&["--tls-cert", cert, "--tls-key", key])
}

/// A WINDOW_UPDATE's payload.
fn increment(n: usize) -> [u8; 4] {
    u32::try_from(n).unwrap().to_be_bytes()
}

#[test]
fn a_fan_out_larger_than_the_connection_window_reaches_every_stream() {
    let pki = Pki::new();
    let hub = https_hub(&pki);
    let mut h2 = H2::connect(hub.addr.port(), &pki.ca_der);
    h2.read_until(WAIT, |f| f.kind == SETTINGS && f.flags & 1 == 0);
    h2.send(SETTINGS, 1, 0, &[]).unwrap();
    // SETTINGS_INITIAL_WINDOW_SIZE 1 MiB.
    h2.send(SETTINGS, 0, 0, &[0, 4, 0, 16, 0, 0]).unwrap();

    let block = h2.get_headers("/.well-known/mercure?topic=fan");
    for i in 0..STREAMS {
        h2.send(HEADERS, END_STREAM | END_HEADERS, 1 + 2 * i, &block)
            .unwrap();
    }
    let mut answered = 0;
    h2.read_until(WAIT, |f| {
        answered += u32::from(f.kind == HEADERS);
        answered == STREAMS
    });
    assert_eq!(answered, STREAMS, "every subscription answered");

    // 250 bytes of data per event: the fan-out is about 300 KB, several
    // times the connection's 64 KiB window.
    let filler = "x".repeat(240);
    let publish = h2.headers(
        "POST",
        "/.well-known/mercure",
        &[("content-type", "application/x-www-form-urlencoded")],
    );
    for i in 0..EVENTS {
        let stream = 1 + 2 * (STREAMS + i as u32);
        let body = format!("topic=fan&data=ev{i}-{filler}");
        h2.send(HEADERS, END_HEADERS, stream, &publish).unwrap();
        h2.send(DATA, END_STREAM, stream, body.as_bytes()).unwrap();
    }

    // Read, giving back what is read to the stream and the connection.
    let mut bodies: HashMap<u32, Vec<u8>> = HashMap::new();
    let complete = |bodies: &HashMap<u32, Vec<u8>>| {
        (0..STREAMS).all(|i| {
            bodies
                .get(&(1 + 2 * i))
                .is_some_and(|body| body.windows(8).filter(|w| w == b"data: ev").count() == EVENTS)
        })
    };
    let deadline = Instant::now() + WAIT;
    while !complete(&bodies) && Instant::now() < deadline {
        let frames = h2.read_until(Duration::from_millis(100), |_| false);
        for f in frames.iter().filter(|f| f.kind == DATA) {
            if f.payload.is_empty() {
                continue;
            }
            h2.send(WINDOW_UPDATE, 0, 0, &increment(f.payload.len()))
                .unwrap();
            if f.stream <= 2 * STREAMS {
                bodies.entry(f.stream).or_default().extend(&f.payload);
                h2.send(WINDOW_UPDATE, 0, f.stream, &increment(f.payload.len()))
                    .unwrap();
            }
        }
    }
    let delivered: usize = bodies
        .values()
        .map(|b| b.windows(8).filter(|w| w == b"data: ev").count())
        .sum();
    assert_eq!(
        delivered,
        STREAMS as usize * EVENTS,
        "every event on every stream"
    );
}
