//! One repo-server endpoint as the checks see it: an address, what it speaks, its health port and
//! its log. Whatever the target (a bare address, a kind cluster, any cluster), it ends up as
//! [`Endpoint`]s; the checks never talk to Kubernetes (or anything else) themselves.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What the TLS port speaks inside TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// gRPC over HTTP/2 (the repo-server): acceptance is proven by the server's SETTINGS frame.
    Grpc,
    /// HTTPS (an ingress or proxy in front): a refusal may come as an HTTP status (nginx's
    /// `ssl_verify_client` answers 400) instead of a TLS alert; acceptance is an HTTP answer that is
    /// not a refusal.
    Https,
    /// Plain TLS (e.g. `openssl s_server`): acceptance is application data, a TLS 1.3 session
    /// ticket, or failing those, silence for the whole silence window.
    Tls,
}

impl Protocol {
    /// The `--protocol` value.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::Https => "https",
            Protocol::Tls => "tls",
        }
    }
}

/// One refused handshake as grpc-go logs it at INFO (v1.81, Argo CD 3.5.1):
/// `grpc: Server.Serve failed to create ServerTransport: connection error: desc =
/// "ServerHandshake(\"127.0.0.1:60540\") failed: tls: client didn't provide a certificate"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoggedRefusal {
    /// The client address the server printed.
    pub peer: String,
    /// The cause after `failed: ` (`tls: client didn't provide a certificate`, `x509: ...`).
    pub cause: String,
}

/// The refused handshakes grpc-go logged among `lines`.
pub fn grpc_refusal_lines(lines: &[String]) -> Vec<LoggedRefusal> {
    const MARK: &str = "ServerHandshake(";
    lines
        .iter()
        .filter_map(|line| {
            let rest = &line[line.find(MARK)? + MARK.len()..];
            let (peer, rest) = rest.split_once(") failed: ")?;
            let peer = peer.trim_matches(['\\', '"']).to_owned();
            let cause = rest.trim_end().trim_end_matches('"').trim_end_matches('\\');
            Some(LoggedRefusal {
                peer,
                cause: cause.to_owned(),
            })
        })
        .collect()
}

/// Where the repo-server's log comes from.
#[derive(Debug, Clone)]
pub enum LogSource {
    /// A file of log lines (e.g. `kubectl logs deploy/argocd-repo-server > repo.log`).
    File(PathBuf),
    /// Lines already in memory (embedded server), with where they came from.
    Lines {
        /// Where the lines came from.
        origin: String,
        /// The lines.
        lines: Vec<String>,
    },
    /// A log fetched when the checks read it (a pod's repo-server container, through the API
    /// server): after every probe, so the refusals the run caused are in it.
    Remote(std::sync::Arc<dyn RemoteLog>),
    /// A log an embedded server keeps writing while it runs.
    Live {
        /// Where the lines come from.
        origin: String,
        /// The lines so far.
        lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    },
}

/// A log that lives elsewhere and is fetched on each read. The endpoint does not know where
/// (the Kubernetes layer implements it for a pod's container), so the checks never reach past it.
pub trait RemoteLog: Send + Sync {
    /// Where the lines come from, for messages (`pod/argocd-repo-server-0 log`).
    fn origin(&self) -> String;
    /// Every line, as of now.
    fn read(&self) -> futures::future::BoxFuture<'_, Result<Vec<String>, LogReadError>>;
    /// `GRPC_GO_LOG_SEVERITY_LEVEL` as the server's configuration sets it (`Some(None)`: unset;
    /// `None`: this source cannot tell), so a missing line can be explained by what is
    /// configured, not guessed.
    fn configured_grpc_log_level(&self) -> Option<Option<&str>> {
        None
    }
}

impl std::fmt::Debug for dyn RemoteLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteLog({})", self.origin())
    }
}

impl LogSource {
    /// Where the lines come from, for messages.
    pub fn origin(&self) -> String {
        match self {
            LogSource::File(p) => p.display().to_string(),
            LogSource::Lines { origin, .. } | LogSource::Live { origin, .. } => origin.clone(),
            LogSource::Remote(r) => r.origin(),
        }
    }

    /// All lines.
    pub async fn read(&self) -> Result<Vec<String>, LogReadError> {
        match self {
            LogSource::File(path) => crate::fsio::read_regular_text(path)
                .map(|t| t.lines().map(str::to_owned).collect())
                .map_err(|source| LogReadError::File {
                    path: path.clone(),
                    source,
                }),
            LogSource::Lines { lines, .. } => Ok(lines.clone()),
            LogSource::Live { lines, .. } => {
                Ok(lines.lock().unwrap_or_else(|e| e.into_inner()).clone())
            }
            LogSource::Remote(r) => r.read().await,
        }
    }
}

/// Why the repo-server's log could not be read: the log checks then give no verdict.
#[derive(Debug, thiserror::Error)]
pub enum LogReadError {
    /// `--log-file` could not be read.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// The read error.
        source: std::io::Error,
    },
    /// A [`RemoteLog`] could not be fetched (the API server's refusal, a timeout).
    #[error("{origin}: {source}")]
    Remote {
        /// Where it was read from.
        origin: String,
        /// Why it could not be.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Why the health port gave no HTTP answer: the probe checks then give no verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// No TCP connection.
    #[error("connect {authority}: {reason}")]
    Connect {
        /// `host:port`.
        authority: String,
        /// The OS's words.
        reason: String,
    },
    /// Connected, but the HTTP exchange failed.
    #[error("GET {url}: {reason}")]
    Exchange {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// No answer in time.
    #[error("GET {url}: no answer within {ms} ms")]
    Timeout {
        /// The URL.
        url: String,
        /// The limit.
        ms: u128,
    },
    /// Every attempt of [`http_probe`] failed; the last failure.
    #[error("{last} ({attempts} attempts, {pause_ms} ms apart)")]
    Attempts {
        /// How many GETs were sent.
        attempts: u32,
        /// The pause between them.
        pause_ms: u128,
        /// Why the last one failed.
        last: Box<HttpError>,
    },
}

/// The `time` of a logrus line, text (`time="..."`) or JSON (`{"time": ...}`) format (RFC 3339).
pub fn logrus_time(line: &str) -> Option<time::OffsetDateTime> {
    let trimmed = line.trim();
    let text = if trimmed.starts_with('{') {
        serde_json::from_str::<serde_json::Value>(trimmed)
            .ok()?
            .get("time")?
            .as_str()?
            .to_owned()
    } else {
        let start = trimmed.find("time=\"")? + 6;
        let rest = &trimmed[start..];
        rest[..rest.find('"')?].to_owned()
    };
    time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339).ok()
}

/// The `msg` of a logrus line, text (`msg="..."`) or JSON (`{"msg": ...}`) format.
pub fn logrus_message(line: &str) -> Option<String> {
    let trimmed = line.trim();
    if trimmed.starts_with('{') {
        return serde_json::from_str::<serde_json::Value>(trimmed)
            .ok()?
            .get("msg")?
            .as_str()
            .map(str::to_owned);
    }
    let start = trimmed.find("msg=")? + 4;
    let rest = &trimmed[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                }
                '"' => return Some(out),
                c => out.push(c),
            }
        }
        None
    } else {
        Some(
            rest.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned(),
        )
    }
}

/// One repo-server endpoint (one replica).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Label in reports (the address, or the pod name).
    pub label: String,
    /// gRPC/TLS address.
    pub addr: SocketAddr,
    /// SNI and the name the server certificate must carry.
    pub server_name: String,
    /// What is spoken inside TLS.
    pub protocol: Protocol,
    /// `host:port` of the HTTP health port, when known.
    pub health: Option<String>,
    /// The repo-server log, when available.
    pub logs: Option<LogSource>,
    /// The relays between the prober and the server (port-forwards), whose failures make what
    /// was seen through them no evidence either way. Empty for a direct connection.
    pub relays: Vec<std::sync::Arc<dyn Relay>>,
}

/// A relay between the prober and the server (a port-forward), as the checks see it.
pub trait Relay: Send + Sync + std::fmt::Debug {
    /// `None` while every connection was relayed; otherwise what failed, for messages.
    fn failure_summary(&self) -> Option<String>;
}

/// Normalizes `--health-url`: accepts `http://host:port`, with or without a path; returns `host:port`.
pub fn parse_health_url(url: &str) -> Result<String, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("--health-url `{url}`: must start with http:// (the repo-server health port 8084 is plain HTTP)")
    })?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || !authority.contains(':') {
        return Err(format!(
            "--health-url `{url}`: needs host:port, e.g. http://127.0.0.1:8084"
        ));
    }
    Ok(authority.to_owned())
}

/// An HTTP answer from the health port.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HttpAnswer {
    /// The URL requested.
    pub url: String,
    /// HTTP status code.
    pub status: u16,
    /// First bytes of the body.
    pub body: String,
    /// Round trip, microseconds.
    pub us: u64,
}

/// `GET http://{authority}{path}` with a time limit.
pub async fn http_get(
    authority: &str,
    path: &str,
    timeout: Duration,
) -> Result<HttpAnswer, HttpError> {
    use http_body_util::{BodyExt, Empty};
    let url = format!("http://{authority}{path}");
    let started = Instant::now();
    let exchange = |reason: String| HttpError::Exchange {
        url: url.clone(),
        reason,
    };
    let work = async {
        let tcp = tokio::net::TcpStream::connect(authority)
            .await
            .map_err(|e| HttpError::Connect {
                authority: authority.to_owned(),
                reason: e.to_string(),
            })?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .map_err(|e| exchange(format!("HTTP handshake: {e}")))?;
        tokio::spawn(conn);
        let req = hyper::Request::get(path)
            .header(hyper::header::HOST, authority)
            .body(Empty::<bytes::Bytes>::new())
            .map_err(|e| exchange(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| exchange(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok::<_, HttpError>(HttpAnswer {
            url: url.clone(),
            status,
            body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            us: started.elapsed().as_micros() as u64,
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| HttpError::Timeout {
            url: url.clone(),
            ms: timeout.as_millis(),
        })?
}

/// How many GETs [`http_probe`] sends before it gives up: the kubelet restarts a container only
/// after the liveness probe's `failureThreshold` (3 in every upstream manifest) consecutive
/// failures, so one slow answer is not the failure the kubelet acts on either.
pub const HTTP_ATTEMPTS: u32 = 3;

/// [`http_get`], sent again (up to `attempts` in all, `pause` apart) while it gets no HTTP answer.
/// Any answer, whatever its status, is returned at once: a 500 is a fact, not a hiccup.
pub async fn http_probe(
    authority: &str,
    path: &str,
    timeout: Duration,
    attempts: u32,
    pause: Duration,
) -> Result<HttpAnswer, HttpError> {
    let attempts = attempts.max(1);
    let mut last = None;
    for n in 1..=attempts {
        match http_get(authority, path, timeout).await {
            Ok(answer) => return Ok(answer),
            Err(e) => last = Some(e),
        }
        if n < attempts {
            tokio::time::sleep(pause).await;
        }
    }
    let last = last.expect("at least one attempt");
    if attempts == 1 {
        return Err(last);
    }
    Err(HttpError::Attempts {
        attempts,
        pause_ms: pause.as_millis(),
        last: Box::new(last),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A health port that holds its first `silent` connections open without a word, then
    /// answers 200: the repo-server's `/healthz?full=true` while the pod is busy.
    async fn slow_then_ok(silent: usize) -> (String, tokio::task::JoinHandle<()>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            for n in 0.. {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                if n < silent {
                    held.push(conn);
                    continue;
                }
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await;
                let _ = conn
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            }
        });
        (authority, task)
    }

    #[tokio::test]
    async fn one_slow_answer_is_retried_like_the_kubelet_does() {
        let short = Duration::from_millis(200);
        let pause = Duration::from_millis(10);
        // Each server's first connection is the slow one.
        let (authority, task) = slow_then_ok(1).await;
        let single = http_probe(&authority, "/healthz?full=true", short, 1, pause).await;
        assert!(
            matches!(single, Err(HttpError::Timeout { .. })),
            "{single:?}"
        );
        task.abort();
        let (authority, task) = slow_then_ok(1).await;
        let answer = http_probe(
            &authority,
            "/healthz?full=true",
            short,
            HTTP_ATTEMPTS,
            pause,
        )
        .await
        .unwrap();
        assert_eq!(answer.status, 200);
        task.abort();
    }

    #[tokio::test]
    async fn a_port_that_never_answers_gives_up_after_the_attempts() {
        let (authority, task) = slow_then_ok(usize::MAX).await;
        let e = http_probe(
            &authority,
            "/healthz",
            Duration::from_millis(100),
            HTTP_ATTEMPTS,
            Duration::from_millis(10),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, HttpError::Attempts { attempts: 3, ref last, .. } if matches!(**last, HttpError::Timeout { .. })),
            "{e:?}"
        );
        assert!(e.to_string().contains("3 attempts"), "{e}");
        task.abort();
    }

    #[test]
    fn logrus_messages_in_both_formats() {
        let cases = [
            (
                r#"time="2026-01-01T00:00:00Z" level=info msg="mTLS enabled for repo-server: requiring client certificates from CA=/x""#,
                Some("mTLS enabled for repo-server: requiring client certificates from CA=/x"),
            ),
            (
                r#"time="t" level=info msg="quoted \"inner\" text" extra=1"#,
                Some(r#"quoted "inner" text"#),
            ),
            (r#"time="t" level=info msg=bare other=1"#, Some("bare")),
            (
                r#"{"level":"info","msg":"Generated ephemeral health-check client certificate (CN=)","time":"t"}"#,
                Some("Generated ephemeral health-check client certificate (CN=)"),
            ),
            ("no structured message here", None),
            (r#"{"level":"info"}"#, None),
        ];
        for (line, want) in cases {
            assert_eq!(logrus_message(line).as_deref(), want, "{line}");
        }
    }

    #[test]
    fn grpc_refusal_lines_as_argocd_3_5_1_prints_them() {
        let lines = [
            // DOMAIN.md, observed on the real v3.5.1 repo-server with GRPC_GO_LOG_SEVERITY_LEVEL=info.
            r#"2026/11/24 19:25:05 INFO: [core] [Server #1] grpc: Server.Serve failed to create ServerTransport: connection error: desc = "ServerHandshake(\"127.0.0.1:60540\") failed: tls: client didn't provide a certificate""#,
            r#"2026/11/24 19:25:05 INFO: [core] [Server #1] grpc: Server.Serve failed to create ServerTransport: connection error: desc = "ServerHandshake(\"[::1]:4711\") failed: x509: certificate signed by unknown authority""#,
            r#"{"level":"info","msg":"mTLS enabled for repo-server: requiring client certificates from CA=/x","time":"t"}"#,
            "2026/11/24 19:25:05 INFO: [core] [Server #1] Server created",
        ]
        .map(str::to_owned);
        assert_eq!(
            grpc_refusal_lines(&lines),
            [
                LoggedRefusal {
                    peer: "127.0.0.1:60540".into(),
                    cause: "tls: client didn't provide a certificate".into()
                },
                LoggedRefusal {
                    peer: "[::1]:4711".into(),
                    cause: "x509: certificate signed by unknown authority".into()
                },
            ]
        );
    }
}
