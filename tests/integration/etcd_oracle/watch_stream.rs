//! One bidirectional `/v3/watch` stream over plain HTTP/1.1.
//!
//! The JSON gateway reads newline-separated watch requests from a chunked request body while it
//! writes newline-separated responses to a chunked response body. ureq sends a whole request
//! body before it reads the response, so it cannot hold such a stream open; this is the few
//! lines of HTTP/1.1 it takes. Every read has a deadline.
//!
//! The request must say `Expect: 100-continue`: without it etcd 3.4's HTTP server answers
//! nothing until the request body ends (measured), so the stream would never start.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

/// An open watch stream.
pub struct WatchStream {
    socket: TcpStream,
    /// Bytes read and not yet decoded (response head, chunk framing).
    raw: Vec<u8>,
    /// Decoded body bytes not yet split into messages.
    body: Vec<u8>,
    head_done: bool,
    ended: bool,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

impl WatchStream {
    /// Opens `/v3/watch` on `addr`.
    pub fn open(addr: SocketAddr) -> io::Result<WatchStream> {
        let mut socket = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
        socket.set_nodelay(true)?;
        socket.set_write_timeout(Some(CONNECT_TIMEOUT))?;
        write!(
            socket,
            "POST /v3/watch HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
        )?;
        Ok(WatchStream {
            socket,
            raw: Vec::new(),
            body: Vec::new(),
            head_done: false,
            ended: false,
        })
    }

    /// Sends one watch request (one line, one chunk).
    pub fn send(&mut self, request: &Value) -> io::Result<()> {
        let line = format!("{request}\n");
        write!(self.socket, "{:x}\r\n{line}\r\n", line.len())?;
        self.socket.flush()
    }

    /// The next message, or `None` if none came by `deadline` or the stream ended.
    pub fn next_message(&mut self, deadline: Instant) -> Option<Value> {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            if let Some(end) = self.body.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.body.drain(..=end).collect();
                let message = serde_json::from_slice(&line)
                    .unwrap_or_else(|e| panic!("bad watch message {line:?}: {e}"));
                return Some(message);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if self.ended || left.is_zero() {
                return None;
            }
            self.socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("nonzero timeout");
            match self.socket.read(&mut buffer) {
                Ok(0) => self.ended = true,
                Ok(n) => {
                    self.raw.extend_from_slice(&buffer[..n]);
                    self.decode();
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.ended = true,
            }
        }
    }

    /// Moves whole chunks from `raw` to `body`, after checking the response head once (past
    /// the interim `100 Continue`).
    fn decode(&mut self) {
        while !self.head_done {
            let Some(end) = find(&self.raw, b"\r\n\r\n") else {
                return;
            };
            let head = String::from_utf8_lossy(&self.raw[..end]).to_ascii_lowercase();
            self.raw.drain(..end + 4);
            if head.starts_with("http/1.1 100") {
                continue;
            }
            assert!(
                head.starts_with("http/1.1 200") && head.contains("transfer-encoding: chunked"),
                "unexpected watch response head: {head}"
            );
            self.head_done = true;
        }
        while let Some(line_end) = find(&self.raw, b"\r\n") {
            let size_line = String::from_utf8_lossy(&self.raw[..line_end]);
            let size_hex = size_line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_hex, 16)
                .unwrap_or_else(|e| panic!("bad chunk size {size_line:?}: {e}"));
            if size == 0 {
                self.ended = true;
                return;
            }
            let data_start = line_end + 2;
            if self.raw.len() < data_start + size + 2 {
                return;
            }
            self.body
                .extend_from_slice(&self.raw[data_start..data_start + size]);
            self.raw.drain(..data_start + size + 2);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
