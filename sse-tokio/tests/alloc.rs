//! Receiving events allocates (next to) nothing per event: the stream is a
//! poll state machine, not a boxed future per item. Allocations are counted
//! on the polling thread only (a current-thread runtime drives the socket
//! and the timer there; the server has its own thread).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use sse_tokio::{ClientConfig, Event, EventSource};

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

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

const EVENTS: u64 = 5_000;

async fn count_allocations_per_event() -> u64 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
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
        thread::sleep(Duration::from_millis(500));
    });
    let mut es = EventSource::new(ClientConfig::new(url)).unwrap();
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
    n
}

#[test]
fn tokio_receives_events_without_an_allocation_each() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let n = runtime.block_on(count_allocations_per_event());
    assert!(n < 100, "{n} allocations for {EVENTS} events");
}
