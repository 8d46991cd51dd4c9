//! Receiving events allocates (next to) nothing per event, on tokio, smol
//! and async-std: the stream is a poll state machine, not a boxed future
//! per item. Allocations are counted on the polling thread only (the
//! server has a thread of its own, and so have the reactors that run on
//! one). A global allocator is one per test binary: this one counts.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::thread;

use common::{Rt, WAIT, on_every_runtime};
use sse_driver::client::{ClientConfig, Event};

on_every_runtime!(receives_events_without_an_allocation_each);

/// The system allocator, counting the allocations of each thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// How many allocations this thread has made.
fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// How many events are counted.
const EVENTS: u64 = 5_000;

/// Serves `EVENTS + 1` small events in one response from a blocking thread
/// on 127.0.0.1 (it allocates nothing on the polling thread), reads them
/// with the crate's client and counts the allocations made on the way.
async fn receives_events_without_an_allocation_each<R: Rt>(rt: R) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        let mut body = String::from("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n");
        for i in 0..=EVENTS {
            body.push_str(&format!("id: {i}\ndata: small event {i}\n\n"));
        }
        s.write_all(body.as_bytes()).unwrap();
        // Until the client hangs up (or the wait runs out).
        let _ = s.read(&mut byte);
    });
    let mut es = rt.event_source(ClientConfig::new(url)).unwrap();
    assert!(matches!(es.next().await, Some(Ok(Event::Open))));
    assert!(matches!(es.next().await, Some(Ok(Event::Message(_)))));
    let before = allocations();
    for _ in 0..EVENTS {
        match es.next().await {
            Some(Ok(Event::Message(m))) => assert!(m.data().starts_with("small event")),
            other => panic!("{other:?}"),
        }
    }
    let n = allocations() - before;
    eprintln!("{n} allocations on the polling thread for {EVENTS} events");
    // The counter works: a (cheap) allocation shows up.
    let before = allocations();
    drop(std::hint::black_box(vec![1u8; 64]));
    assert!(allocations() > before);
    assert!(n < 100, "{n} allocations for {EVENTS} events");
    drop(es);
    server.join().unwrap();
}
