//! Many forwarded connections over one API-server connection: the SPDY/3.1 `portforward.k8s.io`
//! protocol `kubectl port-forward` speaks. One upgraded connection per pod and port; each relayed
//! connection is a pair of streams, `error` and `data`, under a request id of its own, and the
//! kubelet dials the pod once per pair.
//!
//! The WebSocket protocol (`v4.channel.k8s.io`, what kube's `portforward` speaks) fixes its ports
//! when it opens and cannot say that one of them closed, so it costs an API-server connection, a
//! kubelet stream and a runtime stream for every connection. Here the server's close of one
//! connection (a refusal) still reaches the prober, as that data stream's FIN.
//!
//! Only what the relay needs is spoken: SYN_STREAM, whose header block goes out as stored (not
//! compressed) zlib blocks, which any inflater reads; DATA; RST_STREAM; PING answered. The
//! server's header blocks are skipped, never inflated: nothing in them is read. The kubelet's
//! SPDY server (spdystream) does not enforce SPDY's flow control, and attempts move a few
//! kilobytes each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

use super::forward::LateError;

/// SPDY's version 3 in a control frame's first two bytes.
const CONTROL_V3: [u8; 2] = [0x80, 0x03];
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
/// A frame that ends its sender's side of the stream.
const FLAG_FIN: u8 = 0x01;
/// RST_STREAM's status for a stream the sender is done with.
const CANCEL: u32 = 5;
/// The largest DATA payload sent at once.
const CHUNK: usize = 16 * 1024;

/// What the connection's reader tells one stream.
#[derive(Debug)]
enum Event {
    Data(Bytes),
    /// The server ended its side.
    Fin,
    /// The server reset the stream, with this status.
    Reset(u32),
    /// The whole connection is gone, for this reason.
    Gone(String),
}

/// Why a SPDY connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The API server, or a proxy in front of it, does not switch to SPDY (status): the caller
    /// falls back to a WebSocket per connection.
    #[error("the API server answered the SPDY upgrade with HTTP {0}")]
    NotUpgraded(u16),
    /// The request itself failed.
    #[error("{0}")]
    Request(String),
}

/// The streams the reader delivers to, and whether the connection is gone.
#[derive(Default)]
struct Routes {
    streams: HashMap<u32, mpsc::UnboundedSender<Event>>,
    gone: Option<String>,
}

/// What stream creation must do in wire order: stream ids rise, and header blocks continue one
/// zlib stream.
struct Opening {
    next_stream: u32,
    next_request: u64,
    zlib_started: bool,
}

/// One upgraded port-forward connection to a pod.
pub struct Session {
    frames: mpsc::UnboundedSender<Vec<u8>>,
    routes: Arc<Mutex<Routes>>,
    opening: Mutex<Opening>,
}

impl Session {
    /// Upgrades `POST {path}` (a pod's `portforward` subresource) to SPDY/3.1.
    pub async fn open(client: &kube::Client, path: &str) -> Result<Session, OpenError> {
        let request = http::Request::post(path)
            .header(http::header::CONNECTION, "Upgrade")
            .header(http::header::UPGRADE, "SPDY/3.1")
            .header("X-Stream-Protocol-Version", "portforward.k8s.io")
            .body(kube::client::Body::from(Vec::new()))
            .map_err(|e| OpenError::Request(e.to_string()))?;
        let response = client
            .send(request)
            .await
            .map_err(|e| OpenError::Request(super::cluster::describe(&e)))?;
        if response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
            return Err(OpenError::NotUpgraded(response.status().as_u16()));
        }
        let upgraded = hyper::upgrade::on(response)
            .await
            .map_err(|e| OpenError::Request(format!("the SPDY upgrade failed: {e}")))?;
        let (reader, writer) = tokio::io::split(hyper_util::rt::TokioIo::new(upgraded));
        let (frames, outbox) = mpsc::unbounded_channel();
        let routes = Arc::new(Mutex::new(Routes::default()));
        tokio::spawn(write_frames(outbox, writer));
        tokio::spawn(read_frames(reader, routes.clone(), frames.downgrade()));
        Ok(Session {
            frames,
            routes,
            opening: Mutex::new(Opening {
                next_stream: 1,
                next_request: 0,
                zlib_started: false,
            }),
        })
    }

    /// Whether the connection still carries streams.
    pub fn alive(&self) -> bool {
        lock(&self.routes).gone.is_none()
    }

    /// A new connection to `port`: the local end of its data stream, and what its error stream
    /// says once the kubelet is done with it (its message, if any; a lost connection is one too).
    pub fn connect(&self, port: u16) -> Result<(DuplexStream, LateError), String> {
        let (error_to, mut error_events) = mpsc::unbounded_channel();
        let (data_to, mut data_events) = mpsc::unbounded_channel();
        let (error_id, data_id) = {
            let mut opening = lock(&self.opening);
            let (error_id, data_id) = (opening.next_stream, opening.next_stream + 2);
            {
                let mut routes = lock(&self.routes);
                if let Some(why) = &routes.gone {
                    return Err(why.clone());
                }
                routes.streams.insert(error_id, error_to);
                routes.streams.insert(data_id, data_to);
            }
            opening.next_stream += 4;
            let request = opening.next_request.to_string();
            opening.next_request += 1;
            let port = port.to_string();
            for (id, kind) in [(error_id, "error"), (data_id, "data")] {
                let headers = header_block(
                    &[
                        ("streamtype", kind),
                        ("port", &port),
                        ("requestid", &request),
                    ],
                    !opening.zlib_started,
                );
                opening.zlib_started = true;
                self.send(syn_stream(id, &headers))?;
            }
            // Nothing is ever written to the error stream: its side ends at once, as kubectl's.
            self.send(data_frame(error_id, FLAG_FIN, &[]))?;
            (error_id, data_id)
        };

        let (local, ours) = tokio::io::duplex(64 * 1024);
        let (mut from_local, mut to_local) = tokio::io::split(ours);
        let frames = self.frames.clone();
        let up = tokio::spawn(async move {
            let mut buf = vec![0u8; CHUNK];
            loop {
                match from_local.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = frames.send(data_frame(data_id, FLAG_FIN, &[]));
                        break;
                    }
                    Ok(n) => {
                        if frames.send(data_frame(data_id, 0, &buf[..n])).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let frames = self.frames.clone();
        let routes = self.routes.clone();
        let (data_ended, data_end) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut end = None;
            while let Some(event) = data_events.recv().await {
                match event {
                    Event::Data(bytes) => {
                        if to_local.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                    ended => {
                        end = Some(ended);
                        break;
                    }
                }
            }
            let _ = data_ended.send(end);
            // The kubelet ends a connection as a whole: once its data stream ended, nothing more
            // goes either way. Both streams are released on the server too.
            let _ = to_local.shutdown().await;
            up.abort();
            lock(&routes)
                .streams
                .retain(|id, _| *id != error_id && *id != data_id);
            for id in [data_id, error_id] {
                let _ = frames.send(rst_stream(id, CANCEL));
            }
        });
        // The kubelet's message, else how the data stream ended: a reset without a message, or
        // the connection lost, is the forward's failure too (never the server's close).
        let late: LateError = Box::pin(async move {
            let mut said = Vec::new();
            while let Some(event) = error_events.recv().await {
                match event {
                    Event::Data(bytes) => said.extend_from_slice(&bytes),
                    Event::Gone(why) => {
                        return Some(format!("the port-forward connection failed: {why}"));
                    }
                    Event::Fin | Event::Reset(_) => break,
                }
            }
            if !said.is_empty() {
                return Some(String::from_utf8_lossy(&said).into_owned());
            }
            match data_end.await {
                Ok(Some(Event::Reset(status))) => Some(format!(
                    "the kubelet reset the connection's data stream (SPDY status {status}) without a message"
                )),
                Ok(Some(Event::Gone(why))) => {
                    Some(format!("the port-forward connection failed: {why}"))
                }
                _ => None,
            }
        });
        Ok((local, late))
    }

    fn send(&self, frame: Vec<u8>) -> Result<(), String> {
        self.frames
            .send(frame)
            .map_err(|_| "the port-forward connection is closed".to_owned())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn write_frames(
    mut outbox: mpsc::UnboundedReceiver<Vec<u8>>,
    mut writer: impl tokio::io::AsyncWrite + Unpin,
) {
    while let Some(frame) = outbox.recv().await {
        if writer.write_all(&frame).await.is_err() || writer.flush().await.is_err() {
            break;
        }
    }
    let _ = writer.shutdown().await;
}

/// Reads frames until the connection ends, delivering each stream's data, end and reset, and
/// answering pings; then tells every stream still open why the connection is gone.
async fn read_frames(
    mut reader: impl tokio::io::AsyncRead + Unpin,
    routes: Arc<Mutex<Routes>>,
    frames: mpsc::WeakUnboundedSender<Vec<u8>>,
) {
    let route = |id: u32, event: Event| {
        if let Some(to) = lock(&routes).streams.get(&(id & 0x7fff_ffff)) {
            let _ = to.send(event);
        }
    };
    let why = loop {
        let mut head = [0u8; 8];
        if let Err(e) = reader.read_exact(&mut head).await {
            break format!("the API server closed it ({e})");
        }
        let flags = head[4];
        let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
        let mut body = vec![0u8; len];
        if let Err(e) = reader.read_exact(&mut body).await {
            break format!("the API server closed it mid-frame ({e})");
        }
        if head[0] & 0x80 == 0 {
            let id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            if !body.is_empty() {
                route(id, Event::Data(body.into()));
            }
            if flags & FLAG_FIN != 0 {
                route(id, Event::Fin);
            }
            continue;
        }
        match u16::from_be_bytes([head[2], head[3]]) {
            RST_STREAM if body.len() >= 8 => {
                let id = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                let status = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
                route(id, Event::Reset(status));
            }
            PING => {
                if let Some(frames) = frames.upgrade() {
                    let _ = frames.send(control(PING, 0, &body));
                }
            }
            GOAWAY => break "the API server ended it (GOAWAY)".to_owned(),
            // A reply that also ends the server's side.
            SYN_REPLY | HEADERS if flags & FLAG_FIN != 0 && body.len() >= 4 => {
                route(
                    u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
                    Event::Fin,
                );
            }
            // Other replies, SETTINGS, WINDOW_UPDATE: nothing the relay reads.
            _ => {}
        }
    };
    let mut routes = lock(&routes);
    routes.gone = Some(why.clone());
    for (_, to) in routes.streams.drain() {
        let _ = to.send(Event::Gone(why.clone()));
    }
}

fn control(kind: u16, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(8 + body.len());
    frame.extend_from_slice(&CONTROL_V3);
    frame.extend_from_slice(&kind.to_be_bytes());
    frame.push(flags);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    frame.extend_from_slice(body);
    frame
}

fn syn_stream(id: u32, header_block: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(10 + header_block.len());
    body.extend_from_slice(&id.to_be_bytes());
    // Associated-to stream, priority and slot: none, 0, 0.
    body.extend_from_slice(&[0; 6]);
    body.extend_from_slice(header_block);
    control(SYN_STREAM, 0, &body)
}

fn rst_stream(id: u32, status: u32) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    body.extend_from_slice(&status.to_be_bytes());
    control(RST_STREAM, 0, &body)
}

fn data_frame(id: u32, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(8 + data.len());
    frame.extend_from_slice(&(id & 0x7fff_ffff).to_be_bytes());
    frame.push(flags);
    frame.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    frame.extend_from_slice(data);
    frame
}

/// A SPDY/3 name/value block (lower-case names), as the next piece of the connection's zlib
/// stream: the stream's header first (no preset dictionary), then one stored block and an empty
/// one. An inflater primed with SPDY's dictionary reads it as it reads compressed blocks.
fn header_block(pairs: &[(&str, &str)], first: bool) -> Vec<u8> {
    let mut raw = (pairs.len() as u32).to_be_bytes().to_vec();
    for (name, value) in pairs {
        for s in [name, value] {
            raw.extend_from_slice(&(s.len() as u32).to_be_bytes());
            raw.extend_from_slice(s.as_bytes());
        }
    }
    let mut out = Vec::with_capacity(raw.len() + 7);
    if first {
        // CMF 0x78 (deflate, 32 KiB window), FLG 0x01: no dictionary, check bits right.
        out.extend_from_slice(&[0x78, 0x01]);
    }
    let len = raw.len() as u16;
    // BFINAL 0, BTYPE 00 (stored), then LEN and its complement, little-endian.
    out.push(0x00);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(&raw);
    // An empty stored block, as zlib's sync flush ends a block: an inflater hands out what it
    // has when it meets it, and does not read on into the next frame for a block header.
    out.extend_from_slice(&[0x00, 0x00, 0x00, 0xff, 0xff]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header blocks of a connection are one zlib stream any inflater reads, across frames.
    #[test]
    fn header_blocks_are_one_readable_zlib_stream() {
        let mut stream = header_block(&[("streamtype", "error"), ("port", "8081")], true);
        stream.extend(header_block(&[("requestid", "7")], false));
        assert_eq!(&stream[..2], &[0x78, 0x01]);
        assert_eq!(u16::from_be_bytes([stream[0], stream[1]]) % 31, 0);
        let mut inflated = Vec::new();
        let mut state =
            miniz_oxide::inflate::stream::InflateState::new(miniz_oxide::DataFormat::Zlib);
        let mut out = [0u8; 256];
        let result = miniz_oxide::inflate::stream::inflate(
            &mut state,
            &stream,
            &mut out,
            miniz_oxide::MZFlush::Sync,
        );
        inflated.extend_from_slice(&out[..result.bytes_written]);
        let mut want = 2u32.to_be_bytes().to_vec();
        for s in ["streamtype", "error", "port", "8081"] {
            want.extend_from_slice(&(s.len() as u32).to_be_bytes());
            want.extend_from_slice(s.as_bytes());
        }
        want.extend_from_slice(&1u32.to_be_bytes());
        for s in ["requestid", "7"] {
            want.extend_from_slice(&(s.len() as u32).to_be_bytes());
            want.extend_from_slice(s.as_bytes());
        }
        assert_eq!(inflated, want);
    }

    use tokio::net::TcpListener;

    /// A stand-in for the API server on loopback (not the kubelet: the node scenarios meet the
    /// real one): answers the upgrade with `status`, reads our two SYN_STREAMs, sends what
    /// `script` makes of their ids, and returns the data our data stream carried.
    async fn peer(
        status: &'static str,
        script: fn(u32, u32) -> Vec<Vec<u8>>,
    ) -> (kube::Client, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                if conn.read_exact(&mut byte).await.is_err() {
                    return Vec::new();
                }
                request.push(byte[0]);
            }
            let upgrade = status.starts_with("101");
            let answer = if upgrade {
                format!(
                    "HTTP/1.1 {status}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n"
                )
            } else {
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n")
            };
            conn.write_all(answer.as_bytes()).await.unwrap();
            if !upgrade {
                return Vec::new();
            }
            let (mut ids, mut sent, mut carried) = (Vec::new(), false, Vec::new());
            loop {
                let mut head = [0u8; 8];
                if conn.read_exact(&mut head).await.is_err() {
                    return carried;
                }
                let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
                let mut body = vec![0u8; len];
                if conn.read_exact(&mut body).await.is_err() {
                    return carried;
                }
                if head[..4] == [0x80, 0x03, 0x00, 0x01] {
                    ids.push(u32::from_be_bytes([body[0], body[1], body[2], body[3]]));
                } else if head[0] & 0x80 == 0
                    && ids.get(1) == Some(&u32::from_be_bytes([head[0], head[1], head[2], head[3]]))
                {
                    carried.extend_from_slice(&body);
                }
                if ids.len() == 2 && !sent {
                    sent = true;
                    for frame in script(ids[0], ids[1]) {
                        conn.write_all(&frame).await.unwrap();
                    }
                }
            }
        });
        let config = kube::Config::new(url.parse().unwrap());
        (kube::Client::try_from(config).unwrap(), served)
    }

    async fn forwarded(script: fn(u32, u32) -> Vec<Vec<u8>>) -> (Vec<u8>, Option<String>, Vec<u8>) {
        let (client, served) = peer("101 Switching Protocols", script).await;
        let session = Session::open(&client, "/api/v1/namespaces/argocd/pods/p/portforward")
            .await
            .unwrap();
        let (mut stream, late) = session.connect(8081).unwrap();
        stream.write_all(b"hello").await.unwrap();
        let mut read = Vec::new();
        let bounded = std::time::Duration::from_secs(5);
        tokio::time::timeout(bounded, stream.read_to_end(&mut read))
            .await
            .expect("the local end sees the stream's end")
            .unwrap();
        let late = tokio::time::timeout(bounded, late)
            .await
            .expect("the error stream ends");
        drop(stream);
        drop(session);
        let carried = tokio::time::timeout(bounded, served)
            .await
            .unwrap()
            .unwrap();
        (read, late, carried)
    }

    /// The server's close of one connection reaches the prober as the end of its stream, and is
    /// no failure of the forward; the prober's bytes went out on the data stream.
    #[tokio::test]
    async fn a_fin_from_the_server_is_the_end_of_that_connection() {
        let (read, late, carried) = forwarded(|error, data| {
            vec![
                data_frame(data, 0, b"\x15\x03\x03\x00\x02\x02\x74"),
                data_frame(error, FLAG_FIN, &[]),
                data_frame(data, FLAG_FIN, &[]),
            ]
        })
        .await;
        assert_eq!(read, b"\x15\x03\x03\x00\x02\x02\x74");
        assert_eq!(late, None);
        assert!(carried.starts_with(b"hello"), "{carried:?}");
    }

    /// What the kubelet says on the error stream is the forward's failure; so is a reset data
    /// stream without a word, and a connection the API server ends: never a server's refusal.
    #[tokio::test]
    async fn a_reset_or_a_lost_connection_is_the_forwards_failure() {
        let (read, late, _) = forwarded(|error, data| {
            vec![
                data_frame(
                    error,
                    0,
                    b"error forwarding port 8081: connect: connection refused",
                ),
                rst_stream(data, 1),
                rst_stream(error, 1),
            ]
        })
        .await;
        assert!(read.is_empty());
        assert!(late.unwrap().contains("connection refused"));

        let (_, late, _) = forwarded(|_, data| vec![rst_stream(data, 1)]).await;
        assert!(
            late.as_deref()
                .is_some_and(|l| l.contains("reset") && l.contains("status 1")),
            "{late:?}"
        );

        let (_, late, _) = forwarded(|_, _| vec![control(GOAWAY, 0, &[0; 8])]).await;
        assert!(
            late.as_deref().is_some_and(|l| l.contains("GOAWAY")),
            "{late:?}"
        );
    }

    /// An API server that does not switch to SPDY is told apart (the forward then uses a
    /// WebSocket per connection) from a request that failed.
    #[tokio::test]
    async fn an_api_server_without_spdy_is_told_apart() {
        let (client, _served) = peer("404 Not Found", |_, _| vec![]).await;
        match Session::open(&client, "/api/v1/namespaces/argocd/pods/p/portforward").await {
            Err(OpenError::NotUpgraded(404)) => {}
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("upgraded"),
        }
    }

    #[test]
    fn frames_carry_their_lengths_and_flags() {
        let syn = syn_stream(3, &[1, 2, 3]);
        assert_eq!(&syn[..4], &[0x80, 0x03, 0x00, 0x01]);
        assert_eq!(&syn[5..8], &[0, 0, 13]);
        assert_eq!(&syn[8..12], &3u32.to_be_bytes());
        let data = data_frame(5, FLAG_FIN, b"hi");
        assert_eq!(data, [0, 0, 0, 5, 1, 0, 0, 2, b'h', b'i']);
        let rst = rst_stream(5, CANCEL);
        assert_eq!(&rst[..8], &[0x80, 0x03, 0x00, 0x03, 0, 0, 0, 8]);
    }
}
