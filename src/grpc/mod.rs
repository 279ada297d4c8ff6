//! gRPC over a connection the probe engine opened: `grpc.health.v1.Health/Check`,
//! `version.VersionService/Version`, and the no-certificate RPC that must die before any response.
//!
//! The TLS connection is made by [`crate::probe::connect`] (so version, identity and evidence are
//! the harness's own), and one unary call is spoken over it with the `h2` crate directly: no
//! reconnects, no retries, and every failure is traced back to what the server did on the wire
//! (its TLS alert, its close, its HTTP/2 or gRPC answer) or else reported as inconclusive. A
//! message of the harness's own is never evidence about the server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::pki::Identity;
use crate::probe::{
    self, AcceptanceProof, Outcome, PeerSaid, ProbeOutcome, ProbeRequest, Sni, TlsVersion,
};
use crate::version_proto::VersionMessage;

mod resume;
mod tap;
mod upgrade;

pub use resume::{MAX_TRIES as MAX_RESUMPTION_TRIES, ResumedCall, Resumption, resumed_call};
pub use upgrade::h2c_upgrade;

use tap::{Tap, Tapped};

/// Where and as whom to call.
#[derive(Debug, Clone)]
pub struct GrpcTarget {
    /// The repo-server gRPC address.
    pub addr: SocketAddr,
    /// SNI / expected server name.
    pub server_name: String,
    /// Identity to present.
    pub identity: Option<Identity>,
    /// Server trust anchors (verification recorded, not enforced).
    pub server_roots: Vec<CertificateDer<'static>>,
    /// TLS version to use.
    pub version: TlsVersion,
    /// Time limit for connect + call.
    pub timeout: Duration,
    /// Whether the connection offers a session handed out before (see [`probe::Resume`]).
    pub resume: probe::Resume,
}

/// Why a call did not return a message.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// The TLS connection was not established; the probe outcome says how it ended.
    #[error("TLS connection not established: {}", .0.detail)]
    Connect(Box<ProbeOutcome>),
    /// The server ended the connection (alert or close) before any response.
    #[error("{}", .0.detail)]
    Refused(Box<ProbeOutcome>),
    /// The server did not select HTTP/2: it does not speak gRPC over TLS.
    #[error(
        "the server does not speak HTTP/2 over TLS (ALPN `h2` not selected; it selected {selected})"
    )]
    NotHttp2 {
        /// What the server selected instead (`none`, `http/1.1`).
        selected: String,
    },
    /// The server answered over HTTP/2, but not with gRPC.
    #[error("the server answered over HTTP/2, but not with gRPC: {0}")]
    NotGrpc(String),
    /// The server's HTTP/2 layer refused the stream or the connection (RST_STREAM, GOAWAY).
    #[error("the server's HTTP/2 layer ended the call: {0}")]
    Http2(String),
    /// The call returned a non-OK gRPC status.
    #[error("gRPC status {name} ({code}): {message}")]
    Status {
        /// The numeric status code.
        code: i32,
        /// The status name (`UNIMPLEMENTED`, ...).
        name: String,
        /// The status message.
        message: String,
    },
    /// The call did not finish in time.
    #[error("no answer within {0} ms")]
    Timeout(u128),
    /// The harness could not make the call (nothing the server did).
    #[error("the harness could not make the call: {0}")]
    Local(String),
}

impl GrpcError {
    /// Whether the failure proves nothing about the server (no TCP, no answer in time, our side).
    pub fn is_inconclusive(&self) -> bool {
        match self {
            GrpcError::Connect(o) => o.outcome == Outcome::Inconclusive,
            GrpcError::Timeout(_) | GrpcError::Local(_) => true,
            _ => false,
        }
    }
}

/// A failed call, classified: `inconclusive` failures never count as a verdict on the server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CallError {
    /// No conclusion can be drawn from it.
    pub inconclusive: bool,
    /// The TLS alert the server sent, when that is how the call ended.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub alert: Option<probe::Alert>,
    /// The endpoint does not speak gRPC (no HTTP/2, or HTTP/2 without gRPC).
    #[serde(default)]
    pub not_grpc: bool,
    /// The gRPC status the call ended with, when it ended with one (its code).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status_code: Option<i32>,
    /// What happened.
    pub message: String,
}

impl CallError {
    /// The gRPC status the call ended with, as tonic names it.
    pub fn code(&self) -> Option<tonic::Code> {
        self.status_code.map(tonic::Code::from_i32)
    }
}

impl From<GrpcError> for CallError {
    fn from(e: GrpcError) -> Self {
        let alert = match &e {
            GrpcError::Connect(o) | GrpcError::Refused(o) => o.alert,
            _ => None,
        };
        CallError {
            inconclusive: e.is_inconclusive(),
            not_grpc: matches!(e, GrpcError::NotHttp2 { .. } | GrpcError::NotGrpc(_)),
            alert,
            status_code: match &e {
                GrpcError::Status { code, .. } => Some(*code),
                _ => None,
            },
            message: e.to_string(),
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn to_request(target: &GrpcTarget) -> ProbeRequest {
    ProbeRequest {
        addr: target.addr,
        server_name: target.server_name.clone(),
        sni: Sni::Configured,
        version: target.version,
        alpn: AcceptanceProof::H2Settings.front_alpn(),
        identity: target.identity.clone(),
        server_roots: target.server_roots.clone(),
        proof: AcceptanceProof::H2Settings,
        timeout: target.timeout,
        silence: None,
        resume: target.resume.clone(),
        kx_group: None,
        sig_family: None,
        framing: None,
        craft: None,
    }
}

/// Aborts the HTTP/2 connection driver when the call is over.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Largest response message read (the repo-server's answers here are a few hundred bytes).
const MAX_RESPONSE: usize = 1 << 20;

/// One unary call: returns the response message and the record of the TLS connection.
async fn unary(
    target: &GrpcTarget,
    path: &str,
    request: &[u8],
) -> Result<(Bytes, ProbeOutcome), GrpcError> {
    let started = Instant::now();
    let connected = probe::connect(&to_request(target), &[b"h2"])
        .await
        .map_err(|o| GrpcError::Connect(Box::new(o)))?;
    let mut connection = connected.outcome.clone();
    if connection.alpn.as_deref() != Some("h2") {
        return Err(GrpcError::NotHttp2 {
            selected: connection
                .alpn
                .clone()
                .map(|p| format!("`{p}`"))
                .unwrap_or_else(|| "none".into()),
        });
    }
    // Let the server speak first (see probe::FIRST_WORD_WINDOW): a refusing server's alert is
    // read before any write of ours can race with it.
    let mut stream = connected.stream;
    let mut first = vec![0u8; 4096];
    let window = probe::FIRST_WORD_WINDOW.min(target.timeout.saturating_sub(started.elapsed()));
    let replay = match tokio::time::timeout(window, stream.read(&mut first)).await {
        Err(_) => Vec::new(),
        Ok(Ok(n)) if n > 0 => first[..n].to_vec(),
        Ok(Ok(_)) => {
            connection.outcome = Outcome::Rejected;
            connection.reset = true;
            connection.detail = "the server closed the connection before any response".into();
            return Err(GrpcError::Refused(Box::new(connection)));
        }
        Ok(Err(e)) => match probe::classify_io(&e) {
            PeerSaid::Alert(alert) => {
                connection.outcome = Outcome::Rejected;
                connection.detail = format!("server sent alert `{alert}` before any response");
                connection.alert = Some(alert);
                return Err(GrpcError::Refused(Box::new(connection)));
            }
            PeerSaid::Reset(why) => {
                connection.outcome = Outcome::Rejected;
                connection.reset = true;
                connection.detail =
                    format!("the server closed the connection before any response ({why})");
                return Err(GrpcError::Refused(Box::new(connection)));
            }
            PeerSaid::Other(why) => return Err(GrpcError::Local(format!("TLS: {why}"))),
        },
    };
    let tap = Tap::default();
    let io = Tapped {
        inner: stream,
        tap: tap.clone(),
        replay,
    };
    let remaining = target.timeout.saturating_sub(started.elapsed());
    let uri = format!("https://{}{path}", target.server_name);
    let call = call_over(io, 1, uri, request);
    let result = tokio::time::timeout(remaining, call).await;
    let step = match result {
        Ok(Ok(message)) => return Ok((message, connection)),
        Ok(Err(step)) => step,
        Err(_) => CallStep::Timeout,
    };
    // What the server did on the wire decides, before anything the HTTP/2 layer made of it.
    match (tap.first(), step) {
        (Some(PeerSaid::Alert(alert)), _) => {
            connection.outcome = Outcome::Rejected;
            connection.detail = format!("server sent alert `{alert}` before any response");
            connection.alert = Some(alert);
            Err(GrpcError::Refused(Box::new(connection)))
        }
        (Some(PeerSaid::Reset(why)), CallStep::H2(_) | CallStep::Timeout) => {
            connection.outcome = Outcome::Rejected;
            connection.reset = true;
            connection.detail =
                format!("the server closed the connection before any response ({why})");
            Err(GrpcError::Refused(Box::new(connection)))
        }
        (_, CallStep::Status(e)) => Err(e),
        (_, CallStep::NotGrpc(why)) => Err(GrpcError::NotGrpc(why)),
        (_, CallStep::Local(why)) => Err(GrpcError::Local(why)),
        (_, CallStep::Timeout) => Err(GrpcError::Timeout(target.timeout.as_millis())),
        (_, CallStep::H2(e)) if e.is_remote() || e.is_go_away() => {
            Err(GrpcError::Http2(e.to_string()))
        }
        (Some(PeerSaid::Other(why)), CallStep::H2(_)) => {
            Err(GrpcError::Local(format!("TLS: {why}")))
        }
        (_, CallStep::H2(e)) => Err(GrpcError::Local(format!("HTTP/2: {e}"))),
    }
}

/// One unary gRPC call over `io` on HTTP/2 stream `first_stream` (1 on a fresh connection; 3
/// after an HTTP/1.1 upgrade, whose request took stream 1): the response message, or the step
/// that failed.
async fn call_over<IO>(
    io: IO,
    first_stream: u32,
    uri: String,
    request: &[u8],
) -> Result<Bytes, CallStep>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (client, conn) = h2::client::Builder::new()
        .initial_stream_id(first_stream)
        .handshake(io)
        .await?;
    let _driver = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let mut client = client.ready().await?;
    let req = http::Request::post(uri)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .map_err(|e| CallStep::Local(e.to_string()))?;
    let (response, mut send) = client.send_request(req, false)?;
    let mut frame = Vec::with_capacity(5 + request.len());
    frame.push(0);
    frame.extend_from_slice(&(request.len() as u32).to_be_bytes());
    frame.extend_from_slice(request);
    // A server may answer (and close the stream) before it reads the request body, as Go's
    // net/http does: the answer then decides, not the late write.
    let sent = send.send_data(Bytes::from(frame), true);
    let (head, mut body) = match response.await {
        Ok(response) => response.into_parts(),
        Err(e) => return Err(sent.err().map(CallStep::from).unwrap_or(CallStep::H2(e))),
    };
    let content_type = head
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if head.status != http::StatusCode::OK || !content_type.starts_with("application/grpc") {
        return Err(CallStep::NotGrpc(format!(
            "HTTP status {}, content-type `{content_type}`",
            head.status.as_u16()
        )));
    }
    if let Some(status) = grpc_status(&head.headers) {
        return Err(status); // trailers-only response
    }
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
        if data.len() > MAX_RESPONSE {
            return Err(CallStep::NotGrpc(format!(
                "response larger than {MAX_RESPONSE} bytes"
            )));
        }
    }
    let trailers = body.trailers().await?.unwrap_or_default();
    if let Some(status) = grpc_status(&trailers) {
        return Err(status);
    }
    match data.as_slice() {
        [0, len @ ..] if len.len() >= 4 => {
            let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            data.get(5..5 + n)
                .map(Bytes::copy_from_slice)
                .ok_or_else(|| CallStep::NotGrpc("truncated gRPC message".into()))
        }
        [1, ..] => Err(CallStep::NotGrpc(
            "compressed gRPC message (none was negotiated)".into(),
        )),
        _ => Err(CallStep::NotGrpc(
            "no gRPC message in an OK response".into(),
        )),
    }
}

/// How a call's steps failed, before the wire tap is consulted.
enum CallStep {
    H2(h2::Error),
    Status(GrpcError),
    NotGrpc(String),
    Local(String),
    Timeout,
}

impl From<h2::Error> for CallStep {
    fn from(e: h2::Error) -> Self {
        CallStep::H2(e)
    }
}

/// The `grpc-status` of a header or trailer map, as an error when it is not OK.
fn grpc_status(headers: &http::HeaderMap) -> Option<CallStep> {
    let code: i32 = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if code == 0 {
        return None;
    }
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    Some(CallStep::Status(GrpcError::Status {
        code,
        name: tonic::Code::from_i32(code).description().to_owned(),
        message,
    }))
}

/// A Health/Check answer's status (grpc.health.v1 `HealthCheckResponse.ServingStatus`); it reads
/// and serializes as its proto name (`SERVING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServingStatus {
    /// `UNKNOWN`.
    Unknown,
    /// `SERVING`: the one answer that admits a healthy server.
    Serving,
    /// `NOT_SERVING`.
    NotServing,
    /// `SERVICE_UNKNOWN`.
    ServiceUnknown,
    /// A value the proto does not name.
    Unrecognized(i32),
}

impl ServingStatus {
    /// From the wire value.
    pub fn from_i32(value: i32) -> Self {
        match value {
            0 => ServingStatus::Unknown,
            1 => ServingStatus::Serving,
            2 => ServingStatus::NotServing,
            3 => ServingStatus::ServiceUnknown,
            other => ServingStatus::Unrecognized(other),
        }
    }

    /// The proto name, or `UNRECOGNIZED(N)`.
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        match self {
            ServingStatus::Unknown => "UNKNOWN".into(),
            ServingStatus::Serving => "SERVING".into(),
            ServingStatus::NotServing => "NOT_SERVING".into(),
            ServingStatus::ServiceUnknown => "SERVICE_UNKNOWN".into(),
            ServingStatus::Unrecognized(v) => format!("UNRECOGNIZED({v})").into(),
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "UNKNOWN" => ServingStatus::Unknown,
            "SERVING" => ServingStatus::Serving,
            "NOT_SERVING" => ServingStatus::NotServing,
            "SERVICE_UNKNOWN" => ServingStatus::ServiceUnknown,
            other => ServingStatus::Unrecognized(
                other
                    .strip_prefix("UNRECOGNIZED(")?
                    .strip_suffix(')')?
                    .parse()
                    .ok()?,
            ),
        })
    }
}

impl std::fmt::Display for ServingStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for ServingStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for ServingStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        ServingStatus::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!("`{name}` is not a health serving status"))
        })
    }
}

/// Result of a Health/Check call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HealthAnswer {
    /// What the server said of itself.
    pub status: ServingStatus,
    /// Round trip of the call, microseconds.
    pub rpc_us: u64,
    /// How the TLS connection was made.
    pub connection: ProbeOutcome,
}

/// Calls `grpc.health.v1.Health/Check` for the whole server (empty service name).
pub async fn health_check(target: &GrpcTarget) -> Result<HealthAnswer, GrpcError> {
    use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
    let started = Instant::now();
    let request = HealthCheckRequest {
        service: String::new(),
    }
    .encode_to_vec();
    let (message, connection) = unary(target, "/grpc.health.v1.Health/Check", &request).await?;
    let response = HealthCheckResponse::decode(message)
        .map_err(|e| GrpcError::NotGrpc(format!("Health/Check answer does not decode: {e}")))?;
    Ok(HealthAnswer {
        status: ServingStatus::from_i32(response.status),
        rpc_us: started.elapsed().as_micros() as u64,
        connection,
    })
}

/// Calls `version.VersionService/Version`.
pub async fn version(target: &GrpcTarget) -> Result<VersionMessage, GrpcError> {
    let (message, _) = unary(target, "/version.VersionService/Version", &[]).await?;
    VersionMessage::decode(message)
        .map_err(|e| GrpcError::NotGrpc(format!("Version answer does not decode: {e}")))
}

/// What happened to an RPC attempted without a client certificate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum NoCertRpc {
    /// Refused during the TLS handshake (the RPC was never sent).
    RefusedInHandshake {
        /// The handshake record.
        connection: ProbeOutcome,
    },
    /// The handshake completed on the client side, then the server ended the connection (alert
    /// or close) before any response.
    DiedBeforeResponse {
        /// The handshake record, with how the server ended it.
        connection: ProbeOutcome,
        /// What the server did.
        error: String,
    },
    /// The server answered the RPC (with data, a gRPC status, or at the HTTP layer): the
    /// unauthenticated client reached the application side of TLS.
    Answered {
        /// What came back.
        answer: String,
    },
    /// Nothing can be concluded (TCP failure, timeout, the harness's own failure).
    Inconclusive {
        /// Why.
        reason: String,
    },
}

/// Attempts `Health/Check` with no client certificate.
pub async fn no_cert_rpc(target: &GrpcTarget) -> NoCertRpc {
    let mut target = target.clone();
    target.identity = None;
    match health_check(&target).await {
        Ok(answer) => NoCertRpc::Answered {
            answer: format!("Health/Check returned {}", answer.status),
        },
        Err(GrpcError::Connect(connection)) if connection.outcome == Outcome::Rejected => {
            NoCertRpc::RefusedInHandshake {
                connection: *connection,
            }
        }
        Err(GrpcError::Refused(connection)) => NoCertRpc::DiedBeforeResponse {
            error: connection.detail.clone(),
            connection: *connection,
        },
        Err(e @ (GrpcError::Status { .. } | GrpcError::NotGrpc(_) | GrpcError::Http2(_))) => {
            NoCertRpc::Answered {
                answer: e.to_string(),
            }
        }
        Err(e) => NoCertRpc::Inconclusive {
            reason: e.to_string(),
        },
    }
}
