//! The client's HTTP/1.1 connection (`sse_proto::client::Connection`),
//! directly or through a forward proxy, fed arbitrary socket bytes, ends of
//! stream, socket errors and timeouts at arbitrary (monotonic) virtual
//! times.
//!
//! Checked after every input, with all outputs drained:
//! * nothing panics;
//! * what a rejecting response is kept of is at most `ERROR_BODY_LIMIT`
//!   bytes, and a `Rejected` is followed by a `Closed`;
//! * `Closed` is the last output ever;
//! * `StartTls` comes only on a tunnelled `https` connection, after a
//!   `Connect` to the proxy;
//! * no busy loop: after `handle_timeout(now)`, `poll_timeout()` is `None`
//!   or later than `now`.
//!
//! Input layout (read with `arbitrary::Unstructured`, all from the front):
//! the URL choice, whether a proxy is set, then one opcode byte per step
//! followed by that step's arguments.
#![no_main]

use std::time::Duration;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use sse_proto::client::{
    ClientConfig, Connection, ConnectionOutput, ERROR_BODY_LIMIT, Proxies, Proxy, ReconnectPolicy,
};

const URLS: &[&str] = &[
    "http://a.test/s",
    "https://b.test:8443/stream?x=1",
    "http://[::1]:1/",
];

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let url = URLS[usize::from(u.arbitrary::<u8>()?) % URLS.len()];
    let mut config = ClientConfig::new(url)
        .reconnect(ReconnectPolicy::default().initial_delay(Duration::from_millis(10)));
    let proxied = u.arbitrary::<bool>()?;
    let proxies = if proxied {
        let proxy = Proxy::parse("http://user:pw@proxy.test:3128").expect("a valid proxy");
        Proxies::all(proxy)
    } else {
        Proxies::none()
    };
    config = config.proxies(proxies);
    if u.arbitrary::<bool>()? {
        config = config.no_reconnect();
    }
    let mut now = Duration::ZERO;
    let Ok(mut conn) = Connection::new(config, now, u.arbitrary()?) else {
        return Ok(());
    };
    let mut closed = false;
    let mut rejected = false;
    let mut via_proxy = false;
    let mut steps = 0;
    while !u.is_empty() && steps < 256 {
        steps += 1;
        match u.arbitrary::<u8>()? % 6 {
            0..=2 => {
                let len = usize::from(u.arbitrary::<u16>()?) % 2048;
                let bytes = u.bytes(len.min(u.len()))?;
                conn.handle_socket_bytes(bytes, now);
            }
            3 => conn.handle_socket_eof(now),
            4 => conn.handle_socket_error(now),
            _ => {
                now += Duration::from_millis(u64::from(u.arbitrary::<u16>()?));
                conn.handle_timeout(now);
                if let Some(deadline) = conn.poll_timeout() {
                    assert!(deadline > now, "a timer due at once after handle_timeout");
                }
            }
        }
        if let Some(bytes) = conn.poll_transmit() {
            let n = bytes.len();
            conn.handle_written(n);
        }
        while let Some(output) = conn.poll_output() {
            assert!(!closed, "an output after Closed: {output:?}");
            match output {
                ConnectionOutput::Connect { proxy, .. } => via_proxy = proxy,
                ConnectionOutput::StartTls { .. } => {
                    assert!(proxied && via_proxy, "StartTls without a proxy tunnel");
                }
                ConnectionOutput::Rejected(response) => {
                    assert!(response.body().len() <= ERROR_BODY_LIMIT);
                    rejected = true;
                }
                ConnectionOutput::Closed(_) => closed = true,
                _ => {}
            }
        }
        if rejected {
            assert!(closed, "Rejected without the Closed it explains");
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
