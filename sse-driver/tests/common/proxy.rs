//! A forward proxy on 127.0.0.1 for the client's tests, on plain threads
//! (so it serves every runtime alike): `CONNECT` tunnels to the target,
//! or a scripted refusal. It records every request head it reads.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// What the proxy does with a `CONNECT`.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// Opens the tunnel.
    Tunnel,
    /// Answers with this status and closes.
    Refuse(u16),
}

/// A running proxy: its address and the heads it has read.
pub struct Proxy {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    /// Starts a proxy that behaves as `behaviour` for every connection.
    pub fn start(behaviour: Behaviour) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&heads);
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let seen = Arc::clone(&seen);
                thread::spawn(move || serve(client, behaviour, &seen));
            }
        });
        Proxy { addr, heads }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request heads read so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

/// One client connection.
fn serve(mut client: TcpStream, behaviour: Behaviour, seen: &Mutex<Vec<String>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    seen.lock().unwrap().push(head.clone());
    let target = head
        .strip_prefix("CONNECT ")
        .and_then(|rest| rest.split(' ').next())
        .map(str::to_owned);
    let (Behaviour::Tunnel, Some(target)) = (behaviour, target) else {
        let status = match behaviour {
            Behaviour::Refuse(status) => status,
            Behaviour::Tunnel => 405,
        };
        let _ = write!(client, "HTTP/1.1 {status} No\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    let Ok(server) = TcpStream::connect(target.as_str()) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let (Ok(mut client_rx), Ok(mut server_tx)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let upstream = thread::spawn(move || {
        let _ = std::io::copy(&mut client_rx, &mut server_tx);
        let _ = server_tx.shutdown(Shutdown::Write);
    });
    let (mut server_rx, mut client_tx) = (server, client);
    let _ = std::io::copy(&mut server_rx, &mut client_tx);
    let _ = client_tx.shutdown(Shutdown::Write);
    let _ = upstream.join();
}
