//! An embedded stand-in for the Argo CD repo-server, built on tonic + rustls: gRPC health and
//! version services on a TLS port, and an HTTP health port with `/healthz` and `/healthz?full=true`.
//!
//! With [`ClientAuthPolicy::RequireAndVerify`] it behaves as Argo CD 3.5 does with mTLS on: the
//! client-CA pool is the operator's CA plus an ephemeral health-check certificate made at startup
//! (`O=Argo CD Health Check`, no CN), and the liveness endpoint dials the gRPC port with it. The
//! other policies are deliberately broken servers, each wrong in exactly one respect, so the tests
//! can prove every check fails where it should. `demo` only ever runs the correct one.
//!
//! One deviation from Argo CD: the ephemeral certificate is not a CA certificate here, because
//! webpki (rightly) refuses a CA certificate as an end entity, where Go's verifier does not.
//!
//! Over 500 lines on purpose: it is one double, and its TLS policies, gRPC services and health port
//! all read the same config; split, each part would re-export the others.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tonic::transport::server::Connected;

use crate::grpc::{self, GrpcTarget};
use crate::pki::{self, Identity};
use crate::probe::TlsVersion;
use crate::version_proto::VersionMessage;
use crate::version_proto::version_service_server::{VersionService, VersionServiceServer};

/// How the server treats client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthPolicy {
    /// Correct: a certificate chaining to the client CA is required (Go's RequireAndVerifyClientCert).
    RequireAndVerify,
    /// Broken: no CertificateRequest at all (mTLS silently off, e.g. a misnamed Secret key).
    NoClientAuth,
    /// Broken: a certificate is verified if presented, but none is also fine.
    Optional,
    /// Broken: a certificate is required, but chain verification errors are ignored
    /// (the handshake signature is still checked, as with Go's RequireAnyClientCert).
    IgnoreVerifyErrors,
    /// Broken: certificates are verified, except their validity period.
    IgnoreExpiry,
}

/// Configuration of the double.
#[derive(Debug, Clone)]
pub struct ReferenceConfig {
    /// Client-certificate policy.
    pub policy: ClientAuthPolicy,
    /// Serve gRPC without TLS (broken in its own way).
    pub plaintext: bool,
    /// TLS versions offered.
    pub versions: Vec<TlsVersion>,
    /// Server certificate chain (PEM-decoded) and key.
    pub server_chain: Vec<CertificateDer<'static>>,
    /// Server key.
    pub server_key: Arc<PrivateKeyDer<'static>>,
    /// The operator's client CA certificate(s).
    pub client_cas: Vec<CertificateDer<'static>>,
    /// Also serve the HTTP health port.
    pub health_http: bool,
    /// Add the ephemeral health-check certificate to the client-CA pool (Argo CD does). Off, the
    /// liveness endpoint's self-dial is refused: the restart-loop failure the probes must catch.
    pub trust_health_cert: bool,
    /// The build the version service reports.
    pub version: VersionMessage,
}

impl ReferenceConfig {
    /// A correct mTLS configuration from a generated bundle.
    pub fn from_bundle(bundle: &pki::GeneratedBundle) -> Result<Self, ReferenceError> {
        use rustls_pki_types::pem::PemObject;
        let pem = |name: &str| {
            bundle
                .file(name)
                .ok_or_else(|| ReferenceError::Config(format!("bundle has no {name}")))
        };
        let server_chain = CertificateDer::pem_slice_iter(pem(pki::files::SERVER_CERT)?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ReferenceError::Config(format!("server.crt: {e}")))?;
        let server_key = PrivateKeyDer::from_pem_slice(pem(pki::files::SERVER_KEY)?)
            .map_err(|e| ReferenceError::Config(format!("server.key: {e}")))?;
        let client_cas = CertificateDer::pem_slice_iter(pem(pki::files::CA_CERT)?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ReferenceError::Config(format!("ca.crt: {e}")))?;
        Ok(ReferenceConfig {
            policy: ClientAuthPolicy::RequireAndVerify,
            plaintext: false,
            versions: vec![TlsVersion::Tls12, TlsVersion::Tls13],
            server_chain,
            server_key: Arc::new(server_key),
            client_cas,
            health_http: true,
            trust_health_cert: true,
            version: VersionMessage {
                version: format!(
                    "v3.5.1+argocd-mtls-verify-reference-{}",
                    env!("CARGO_PKG_VERSION")
                ),
                git_tag: "reference-double".into(),
                go_version: "n/a (rustls + tonic double)".into(),
                platform: format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
                ..Default::default()
            },
        })
    }
}

/// Why the double could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// Bad configuration.
    #[error("reference server configuration: {0}")]
    Config(String),
    /// Could not bind or serve.
    #[error("reference server: {0}")]
    Io(#[from] std::io::Error),
}

/// A running double. Dropping it stops the server.
pub struct RunningReference {
    /// The gRPC (TLS) address.
    pub grpc_addr: SocketAddr,
    /// The HTTP health address, when served.
    pub health_addr: Option<SocketAddr>,
    /// Log lines the double printed: Argo CD's logrus text format, and grpc-go's INFO line for
    /// each refused handshake (as the real server prints with GRPC_GO_LOG_SEVERITY_LEVEL=info).
    pub log_lines: Arc<std::sync::Mutex<Vec<String>>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningReference {
    /// The double as a probe target: gRPC on `localhost` (its certificate's name), its health port,
    /// and the log lines it printed at startup.
    pub fn endpoint(&self, label: impl Into<String>) -> crate::endpoint::Endpoint {
        crate::endpoint::Endpoint {
            relays: vec![],
            label: label.into(),
            addr: self.grpc_addr,
            server_name: "localhost".into(),
            protocol: crate::endpoint::Protocol::Grpc,
            health: self.health_addr.map(|a| a.to_string()),
            logs: Some(crate::endpoint::LogSource::Live {
                origin: "reference server log".into(),
                lines: self.log_lines.clone(),
            }),
        }
    }
}

impl Drop for RunningReference {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Verifier wrappers that make a deliberately broken server.
#[derive(Debug)]
struct BrokenVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    ignore_all_errors: bool,
}

impl ClientCertVerifier for BrokenVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if self.ignore_all_errors {
            return Ok(ClientCertVerified::assertion());
        }
        match self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Expired
                | rustls::CertificateError::ExpiredContext { .. }
                | rustls::CertificateError::NotValidYet
                | rustls::CertificateError::NotValidYetContext { .. },
            )) => {
                // Re-verify as of a moment inside the certificate's own validity period.
                let facts = crate::x509::CertFacts::from_der(end_entity)
                    .map_err(|e| rustls::Error::General(e.to_string()))?;
                let inside = (facts.not_before.unix_timestamp() + 1).max(0) as u64;
                self.inner.verify_client_cert(
                    end_entity,
                    intermediates,
                    UnixTime::since_unix_epoch(Duration::from_secs(inside)),
                )
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The ephemeral health-check identity: Argo CD's subject and SAN, self-signed, in memory only.
fn ephemeral_health_identity() -> Result<Identity, ReferenceError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| ReferenceError::Config(e.to_string()))?;
    let mut params =
        pki::health_check_params().map_err(|e| ReferenceError::Config(e.to_string()))?;
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    let cert = params
        .self_signed(&key)
        .map_err(|e| ReferenceError::Config(e.to_string()))?;
    Ok(Identity {
        label: "health-check".into(),
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|e| ReferenceError::Config(e.into()))?,
    })
}

fn tls_config(
    config: &ReferenceConfig,
    health: &Identity,
) -> Result<rustls::ServerConfig, ReferenceError> {
    let provider = crate::probe::provider();
    let cfg = |e: rustls::Error| ReferenceError::Config(e.to_string());
    let mut roots = RootCertStore::empty();
    let health_anchor = health.chain.iter().filter(|_| config.trust_health_cert);
    for ca in config.client_cas.iter().chain(health_anchor) {
        roots.add(ca.clone()).map_err(cfg)?;
    }
    let roots = Arc::new(roots);
    let verified = || WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone());
    let verifier: Option<Arc<dyn ClientCertVerifier>> = match config.policy {
        ClientAuthPolicy::NoClientAuth => None,
        ClientAuthPolicy::RequireAndVerify => Some(
            verified()
                .build()
                .map_err(|e| ReferenceError::Config(e.to_string()))?,
        ),
        ClientAuthPolicy::Optional => Some(
            verified()
                .allow_unauthenticated()
                .build()
                .map_err(|e| ReferenceError::Config(e.to_string()))?,
        ),
        ClientAuthPolicy::IgnoreVerifyErrors | ClientAuthPolicy::IgnoreExpiry => {
            Some(Arc::new(BrokenVerifier {
                inner: verified()
                    .build()
                    .map_err(|e| ReferenceError::Config(e.to_string()))?,
                ignore_all_errors: config.policy == ClientAuthPolicy::IgnoreVerifyErrors,
            }))
        }
    };
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = config
        .versions
        .iter()
        .filter_map(|v| match v {
            TlsVersion::Tls12 => Some(&rustls::version::TLS12),
            TlsVersion::Tls13 => Some(&rustls::version::TLS13),
            _ => None,
        })
        .collect();
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(cfg)?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut tls = builder
        .with_single_cert(config.server_chain.clone(), config.server_key.clone_key())
        .map_err(cfg)?;
    tls.alpn_protocols = vec![b"h2".to_vec()];
    Ok(tls)
}

/// A server-side TLS stream that tonic accepts as a connection.
struct TlsConn(tokio_rustls::server::TlsStream<TcpStream>);

impl Connected for TlsConn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

struct Version(VersionMessage);

#[tonic::async_trait]
impl VersionService for Version {
    async fn version(
        &self,
        _request: tonic::Request<()>,
    ) -> Result<tonic::Response<VersionMessage>, tonic::Status> {
        Ok(tonic::Response::new(self.0.clone()))
    }
}

/// Starts the double on 127.0.0.1 with ephemeral ports.
pub async fn start(config: ReferenceConfig) -> Result<RunningReference, ReferenceError> {
    let health = ephemeral_health_identity()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let grpc_addr = listener.local_addr()?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let log_lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = |line: String| {
        log_lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line)
    };

    let (reporter, health_service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let router = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(VersionServiceServer::new(Version(config.version.clone())));

    let mut stop = shutdown_rx.clone();
    let stopped = async move {
        let _ = stop.changed().await;
    };
    if config.plaintext {
        let incoming = tokio_stream_from_listener(listener);
        tasks.push(tokio::spawn(async move {
            let _ = router.serve_with_incoming_shutdown(incoming, stopped).await;
        }));
    } else {
        let tls = Arc::new(tls_config(&config, &health)?);
        if config.policy != ClientAuthPolicy::NoClientAuth {
            log(logrus_line(
                "info",
                "mTLS enabled for repo-server: requiring client certificates from CA=/app/config/reposerver/mtls/client-ca.crt",
            ));
            log(logrus_line(
                "info",
                "Generated ephemeral health-check client certificate (CN=)",
            ));
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let refusal_log = log_lines.clone();
        let (tx, rx) = mpsc::channel::<Result<TlsConn, std::io::Error>>(64);
        let mut stop_accept = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop_accept.changed() => break,
                    accepted = listener.accept() => {
                        let Ok((tcp, peer)) = accepted else { continue };
                        let acceptor = acceptor.clone();
                        let tx = tx.clone();
                        let refusals = refusal_log.clone();
                        // Handshakes run on their own tasks: a stalled client must not block others.
                        tokio::spawn(async move {
                            let _ = tcp.set_nodelay(true);
                            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await;
                            match handshake {
                                Ok(Ok(stream)) => {
                                    let _ = tx.send(Ok(TlsConn(stream))).await;
                                }
                                Ok(Err(e)) => refusals.lock().unwrap_or_else(|e| e.into_inner()).push(grpc_refusal_line(peer, &e)),
                                Err(_) => {}
                            }
                        });
                    }
                }
            }
        }));
        let incoming = ReceiverStream(rx);
        tasks.push(tokio::spawn(async move {
            let _ = router.serve_with_incoming_shutdown(incoming, stopped).await;
        }));
    }

    let health_addr = if config.health_http {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let target = GrpcTarget {
            addr: grpc_addr,
            server_name: "localhost".into(),
            identity: Some(health),
            server_roots: vec![],
            version: TlsVersion::Tls13,
            timeout: Duration::from_secs(5),
            resume: Default::default(),
        };
        let plaintext = config.plaintext;
        tasks.push(tokio::spawn(serve_health_http(
            listener,
            target,
            plaintext,
            shutdown_rx,
        )));
        Some(addr)
    } else {
        None
    };
    Ok(RunningReference {
        grpc_addr,
        health_addr,
        log_lines,
        shutdown,
        tasks,
    })
}

/// grpc-go's INFO line for a refused handshake, as Argo CD 3.5.1 prints it.
fn grpc_refusal_line(peer: SocketAddr, error: &std::io::Error) -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02} INFO: [core] [Server #1] grpc: Server.Serve failed to create ServerTransport: connection error: desc = \"ServerHandshake(\\\"{peer}\\\") failed: tls: {error}\"",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// One logrus text-format line, as the repo-server prints them.
fn logrus_line(level: &str, msg: &str) -> String {
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    format!("time=\"{now}\" level={level} msg=\"{msg}\"")
}

/// A `Stream` over an mpsc receiver (avoids a tokio-stream dependency for one adapter).
struct ReceiverStream<T>(mpsc::Receiver<T>);

impl<T> futures::Stream for ReceiverStream<T> {
    type Item = T;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

fn tokio_stream_from_listener(
    listener: TcpListener,
) -> impl futures::Stream<Item = Result<TcpStream, std::io::Error>> {
    futures::stream::unfold(listener, |listener| async move {
        let next = listener.accept().await.map(|(s, _)| s);
        Some((next, listener))
    })
}

async fn serve_health_http(
    listener: TcpListener,
    self_dial: GrpcTarget,
    plaintext: bool,
    mut shutdown: watch::Receiver<bool>,
) {
    use http_body_util::Full;
    use hyper::server::conn::http1;
    use hyper::{Response, StatusCode};
    let self_dial = Arc::new(self_dial);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            a = listener.accept() => a,
        };
        let Ok((tcp, _)) = accepted else { continue };
        let self_dial = self_dial.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let self_dial = self_dial.clone();
                    async move {
                        let full = req
                            .uri()
                            .query()
                            .is_some_and(|q| q.split('&').any(|kv| kv == "full=true"));
                        let (status, body) = match (req.uri().path(), full) {
                            ("/healthz", false) => (StatusCode::OK, "ok".to_owned()),
                            ("/healthz", true) if plaintext => (StatusCode::OK, "ok".to_owned()),
                            ("/healthz", true) => match grpc::health_check(&self_dial).await {
                                Ok(a) if a.status == crate::grpc::ServingStatus::Serving => {
                                    (StatusCode::OK, "ok".to_owned())
                                }
                                Ok(a) => (StatusCode::SERVICE_UNAVAILABLE, a.status.to_string()),
                                Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
                            },
                            _ => (StatusCode::NOT_FOUND, "not found".to_owned()),
                        };
                        Ok::<_, std::convert::Infallible>(
                            Response::builder()
                                .status(status)
                                .body(Full::new(bytes::Bytes::from(body)))
                                .expect("static response parts"),
                        )
                    }
                });
            let _ = http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                .await;
        });
    }
}
