//! The hub's client address behind a trusted proxy: the PROXY protocol
//! parser (versions 1 and 2) and the `Forwarded` / `X-Forwarded-For` walk
//! on arbitrary bytes. No panic, headers bounded, the client one of the
//! addresses written (see `sse_hub::fuzz::client_address`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sse_hub::fuzz::client_address(data);
});
