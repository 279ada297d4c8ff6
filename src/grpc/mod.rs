//! gRPC over a connection the probe engine opened: `grpc.health.v1.Health/Check`,
//! `version.VersionService/Version`, and the no-certificate RPC that must die before any response.
//!
//! The TLS connection is made by [`crate::probe::connect`] (so version, identity and evidence are
//! the harness's own) and handed to tonic through a one-shot connector.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use tonic::transport::{Channel, Endpoint};

use crate::pki::Identity;
use crate::probe::{self, AcceptanceProof, ProbeOutcome, ProbeRequest, TlsVersion};
use crate::version_proto::VersionMessage;
use crate::version_proto::version_service_client::VersionServiceClient;

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
}

/// Why a call could not be made.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// The TLS connection was not established; the probe outcome says how it ended.
    #[error("TLS connection not established: {}", .0.detail)]
    Connect(Box<ProbeOutcome>),
    /// HTTP/2 setup failed after the TLS handshake.
    #[error("HTTP/2 connection failed: {0}")]
    Transport(String),
    /// The call returned a gRPC status.
    #[error("gRPC status {code}: {message}")]
    Status {
        /// The status code name.
        code: String,
        /// The status message.
        message: String,
        /// Whether the status came from the transport (no response from the server at all).
        transport: bool,
    },
    /// The call did not finish in time.
    #[error("no answer within {0} ms")]
    Timeout(u128),
}

impl GrpcError {
    /// Whether the failure proves nothing about the server (no TCP, no answer in time).
    pub fn is_inconclusive(&self) -> bool {
        match self {
            GrpcError::Connect(o) => o.outcome == probe::Outcome::Inconclusive,
            GrpcError::Timeout(_) => true,
            _ => false,
        }
    }
}

/// A failed call, classified: `inconclusive` failures never count as a verdict on the server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CallError {
    /// No conclusion can be drawn from it.
    pub inconclusive: bool,
    /// What happened.
    pub message: String,
}

impl From<GrpcError> for CallError {
    fn from(e: GrpcError) -> Self {
        CallError {
            inconclusive: e.is_inconclusive(),
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
        version: target.version,
        identity: target.identity.clone(),
        server_roots: target.server_roots.clone(),
        proof: AcceptanceProof::H2Settings,
        timeout: target.timeout,
        grace: Duration::ZERO,
    }
}

/// Opens one TLS connection (ALPN h2) and wraps it in a tonic channel.
pub async fn channel(target: &GrpcTarget) -> Result<(Channel, ProbeOutcome), GrpcError> {
    let connected = probe::connect(&to_request(target), &[b"h2"])
        .await
        .map_err(|o| GrpcError::Connect(Box::new(o)))?;
    let outcome = connected.outcome.clone();
    Ok((channel_over(connected, target.timeout).await?, outcome))
}

/// Speaks HTTP/2 over an established TLS connection through a one-shot tonic connector.
async fn channel_over(
    connected: probe::Connected,
    timeout: Duration,
) -> Result<Channel, GrpcError> {
    let slot = Arc::new(Mutex::new(Some(connected.stream)));
    let connector = tower::service_fn(move |_uri: http::Uri| {
        let stream = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        async move {
            stream
                .map(TokioIo::new)
                .ok_or_else(|| std::io::Error::other("probe connections are used once"))
        }
    });
    // TLS is already done on this stream; tonic speaks HTTP/2 over it as over plain TCP. The
    // authority is only a label here: the connector ignores it.
    let endpoint = Endpoint::from_static("http://repo-server.probe")
        .timeout(timeout)
        .connect_timeout(timeout);
    tokio::time::timeout(timeout, endpoint.connect_with_connector(connector))
        .await
        .map_err(|_| GrpcError::Timeout(timeout.as_millis()))?
        .map_err(|e| GrpcError::Transport(error_chain(&e)))
}

/// Renders an error and all its sources on one line.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Whether a status was produced locally by the transport (the server never answered the call).
fn is_transport_status(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(s) = source {
        if s.is::<tonic::transport::Error>()
            || s.is::<h2::Error>()
            || s.is::<hyper::Error>()
            || s.is::<std::io::Error>()
        {
            return true;
        }
        source = s.source();
    }
    // Statuses the server sends carry the server's own code; a bare Unknown/Unavailable with no
    // source and no metadata is how tonic reports a dead connection.
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
    ) && status.metadata().is_empty()
}

fn status_error(status: tonic::Status) -> GrpcError {
    GrpcError::Status {
        code: format!("{:?}", status.code()),
        transport: is_transport_status(&status),
        message: error_chain(&status),
    }
}

/// Result of a Health/Check call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HealthAnswer {
    /// `SERVING`, `NOT_SERVING`, `UNKNOWN` or `SERVICE_UNKNOWN`.
    pub status: String,
    /// Round trip of the call, microseconds.
    pub rpc_us: u64,
    /// How the TLS connection was made.
    pub connection: ProbeOutcome,
}

/// Calls `grpc.health.v1.Health/Check` for the whole server (empty service name).
pub async fn health_check(target: &GrpcTarget) -> Result<HealthAnswer, GrpcError> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let (channel, connection) = channel(target).await?;
    let started = std::time::Instant::now();
    let mut client = HealthClient::new(channel);
    let call = client.check(HealthCheckRequest {
        service: String::new(),
    });
    let response = tokio::time::timeout(target.timeout, call)
        .await
        .map_err(|_| GrpcError::Timeout(target.timeout.as_millis()))?
        .map_err(status_error)?;
    let status = tonic_health::pb::health_check_response::ServingStatus::try_from(
        response.into_inner().status,
    )
    .map(|s| s.as_str_name().to_owned())
    .unwrap_or_else(|_| "UNRECOGNIZED".into());
    Ok(HealthAnswer {
        status,
        rpc_us: started.elapsed().as_micros() as u64,
        connection,
    })
}

/// Calls `version.VersionService/Version`.
pub async fn version(target: &GrpcTarget) -> Result<VersionMessage, GrpcError> {
    let (channel, _) = channel(target).await?;
    let mut client = VersionServiceClient::new(channel);
    let call = client.version(());
    let response = tokio::time::timeout(target.timeout, call)
        .await
        .map_err(|_| GrpcError::Timeout(target.timeout.as_millis()))?
        .map_err(status_error)?;
    Ok(response.into_inner())
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
    /// The handshake completed on the client side, then the connection died before any response.
    DiedBeforeResponse {
        /// The handshake record.
        connection: ProbeOutcome,
        /// The transport error.
        error: String,
    },
    /// The server answered the RPC (with data or a gRPC status): it reached the application layer.
    Answered {
        /// The handshake record.
        connection: ProbeOutcome,
        /// What came back.
        answer: String,
    },
    /// Nothing can be concluded (TCP failure, timeout).
    Inconclusive {
        /// Why.
        reason: String,
    },
}

/// Attempts `Health/Check` with no client certificate.
pub async fn no_cert_rpc(target: &GrpcTarget) -> NoCertRpc {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let mut target = target.clone();
    target.identity = None;
    let connected = match probe::connect(&to_request(&target), &[b"h2"]).await {
        Ok(c) => c,
        Err(outcome) if outcome.outcome == probe::Outcome::Rejected => {
            return NoCertRpc::RefusedInHandshake {
                connection: outcome,
            };
        }
        Err(outcome) => {
            return NoCertRpc::Inconclusive {
                reason: outcome.detail,
            };
        }
    };
    let connection = connected.outcome.clone();
    let channel = match channel_over(connected, target.timeout).await {
        Ok(ch) => ch,
        Err(GrpcError::Timeout(ms)) => {
            return NoCertRpc::Inconclusive {
                reason: format!("HTTP/2 setup got no answer within {ms} ms"),
            };
        }
        Err(e) => {
            return NoCertRpc::DiedBeforeResponse {
                connection,
                error: e.to_string(),
            };
        }
    };
    let mut client = HealthClient::new(channel);
    let call = client.check(HealthCheckRequest {
        service: String::new(),
    });
    match tokio::time::timeout(target.timeout, call).await {
        Err(_) => NoCertRpc::Inconclusive {
            reason: format!(
                "the RPC got no answer within {} ms",
                target.timeout.as_millis()
            ),
        },
        Ok(Ok(resp)) => NoCertRpc::Answered {
            connection,
            answer: format!("Health/Check returned status {}", resp.into_inner().status),
        },
        Ok(Err(status)) if is_transport_status(&status) => NoCertRpc::DiedBeforeResponse {
            connection,
            error: error_chain(&status),
        },
        Ok(Err(status)) => NoCertRpc::Answered {
            connection,
            answer: format!("gRPC status {:?}: {}", status.code(), status.message()),
        },
    }
}
