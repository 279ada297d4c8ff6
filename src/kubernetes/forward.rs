//! Local port-forwards: a listener on 127.0.0.1 that relays every accepted connection through a
//! connector (for the Kubernetes targets, a pair of streams on one SPDY port-forward per pod, or
//! a WebSocket port-forward per connection: `spdy.rs`).
//!
//! A forward that fails must never be mistaken for the repo-server refusing a client: to the
//! prober, a relay that closes looks exactly like a reset. So every relay failure is counted, and
//! the endpoint carries the count ([`RelayHealth`]) to the checks, which judge with it.
//!
//! The converse matters as much: when the repo-server refuses a handshake it closes its end, and
//! the kubelet, still copying the client's bytes to it, reports the stream as failed (`write:
//! broken pipe`, `connection reset by peer`). That is the server's close seen through the relay,
//! which the prober already sees on its own connection, not a broken forward ([`classify`]).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::endpoint::Relay as _;

/// A late failure of an already-open stream (the API server's port-forward error channel).
pub type LateError = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// A stream to the remote port, and an optional future that yields an error reported after it opened.
pub struct Connected<S> {
    /// The byte stream.
    pub stream: S,
    /// Resolves with a message when the remote side reports a failure of this stream.
    pub late_error: Option<LateError>,
}

/// Failures seen by a forward, shared with its relay tasks.
#[derive(Debug, Default)]
struct Failures {
    count: usize,
    first: Option<String>,
    /// Streams the remote server closed while the relay still wrote to it (not failures).
    peer_closed: usize,
}

/// What a stream's error report says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamFailure {
    /// The remote server closed or reset its connection while the relay was still writing to it:
    /// what a server that refuses a handshake does. The prober sees the same close itself.
    PeerClosed,
    /// The forward itself failed (the port is not listening, the pod is gone, the API server or
    /// kubelet dropped the stream): nothing the server did can be read through it.
    Broken,
}

/// Sorts a port-forward stream's error message (kubelet's text, passed on by the API server).
pub fn classify(message: &str) -> StreamFailure {
    let lower = message.to_ascii_lowercase();
    // Refused connections ("connect: connection refused") mean nothing listens: broken.
    if lower.contains("connection refused") {
        return StreamFailure::Broken;
    }
    if lower.contains("broken pipe") || lower.contains("connection reset by peer") {
        StreamFailure::PeerClosed
    } else {
        StreamFailure::Broken
    }
}

/// A running forward; stops when dropped.
#[derive(Debug)]
pub struct LocalForward {
    /// Where to connect locally.
    pub addr: SocketAddr,
    /// What the forward leads to (`pod/argocd-repo-server-x:8081`), for messages.
    pub label: String,
    failures: Arc<Mutex<Failures>>,
    task: JoinHandle<()>,
}

impl Drop for LocalForward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a forward's relay failures look like from the outside: shared with the endpoint it leads
/// to, so the checks read it when they judge.
#[derive(Debug, Clone)]
pub struct RelayHealth {
    label: String,
    failures: Arc<Mutex<Failures>>,
}

impl crate::endpoint::Relay for RelayHealth {
    fn failure_summary(&self) -> Option<String> {
        let f = self.failures.lock().expect("not poisoned");
        (f.count > 0).then(|| {
            format!(
                "{}: {} connections failed in the relay (first: {})",
                self.label,
                f.count,
                f.first.clone().unwrap_or_default()
            )
        })
    }
}

impl LocalForward {
    /// The forward's relay health, to hand to the endpoint behind it.
    pub fn health(&self) -> RelayHealth {
        RelayHealth {
            label: self.label.clone(),
            failures: self.failures.clone(),
        }
    }

    /// How many relayed connections failed so far, and the first reason.
    pub fn failures(&self) -> (usize, Option<String>) {
        let f = self.failures.lock().expect("not poisoned");
        (f.count, f.first.clone())
    }

    /// `None` while every connection was relayed; otherwise what failed, for messages.
    pub fn failure_summary(&self) -> Option<String> {
        self.health().failure_summary()
    }

    /// How many streams the remote server closed under the relay (refusals do that).
    pub fn peer_closed(&self) -> usize {
        self.failures.lock().expect("not poisoned").peer_closed
    }
}

fn record(failures: &Mutex<Failures>, label: &str, why: String, failure: StreamFailure) {
    let mut f = failures.lock().expect("not poisoned");
    if failure == StreamFailure::PeerClosed {
        tracing::debug!("port-forward {label}: the server closed the stream: {why}");
        f.peer_closed += 1;
        return;
    }
    tracing::warn!("port-forward {label}: {why}");
    f.count += 1;
    f.first.get_or_insert(why);
}

/// Starts a forward on `127.0.0.1:0`; each accepted connection gets its own `connect()` stream.
pub async fn start<C, Fut, S>(label: String, connect: C) -> std::io::Result<LocalForward>
where
    C: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Connected<S>, String>> + Send + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let failures = Arc::new(Mutex::new(Failures::default()));
    let connect = Arc::new(connect);
    let task = {
        let failures = failures.clone();
        let label = label.clone();
        tokio::spawn(async move {
            while let Ok((mut local, _)) = listener.accept().await {
                let connect = connect.clone();
                let failures = failures.clone();
                let label = label.clone();
                tokio::spawn(async move {
                    let Connected {
                        mut stream,
                        late_error,
                    } = match connect().await {
                        Ok(c) => c,
                        Err(why) => {
                            return record(&failures, &label, why, StreamFailure::Broken);
                        }
                    };
                    // Only a stream that never opened is the forward's own failure for sure; a
                    // late error is sorted by what it says (`classify`).
                    if let Some(late) = late_error {
                        let failures = failures.clone();
                        let label = label.clone();
                        tokio::spawn(async move {
                            if let Some(why) = late.await {
                                let failure = classify(&why);
                                record(&failures, &label, why, failure);
                            }
                        });
                    }
                    // A reset from the local prober is its own business (it closes after a verdict).
                    let _ = tokio::io::copy_bidirectional(&mut local, &mut stream).await;
                });
            }
        })
    };
    Ok(LocalForward {
        addr,
        label,
        failures,
        task,
    })
}

/// How a forward reaches its pod.
enum Via {
    /// Not chosen yet: the first connection tries SPDY.
    Untried,
    /// One SPDY connection carries every forwarded connection (reopened if it is lost).
    Spdy(Arc<super::spdy::Session>),
    /// The API server does not speak SPDY: a WebSocket per connection.
    WebSocket,
}

/// A forward to `port` of pod `pod`, through the API server (what `kubectl port-forward` does):
/// every connection a pair of streams on one SPDY connection, or, where the API server (or a
/// proxy before it) does not upgrade to SPDY, a WebSocket of its own.
pub async fn to_pod(pods: Api<Pod>, pod: &str, port: u16) -> std::io::Result<LocalForward> {
    let name = pod.to_owned();
    let via = Arc::new(tokio::sync::Mutex::new(Via::Untried));
    start(format!("pod/{pod}:{port}"), move || {
        let pods = pods.clone();
        let name = name.clone();
        let via = via.clone();
        async move {
            let session = {
                // Held while a session opens: the connections behind wait for it, not open more.
                let mut via = via.lock().await;
                match &*via {
                    Via::Spdy(session) if session.alive() => Some(session.clone()),
                    Via::WebSocket => None,
                    Via::Untried | Via::Spdy(_) => {
                        let path = format!("{}/{name}/portforward", pods.resource_url());
                        match super::spdy::Session::open(&pods.clone().into_client(), &path).await
                        {
                            Ok(session) => {
                                let session = Arc::new(session);
                                *via = Via::Spdy(session.clone());
                                Some(session)
                            }
                            Err(super::spdy::OpenError::NotUpgraded(status)) => {
                                tracing::debug!(
                                    "pod/{name}:{port}: no SPDY port-forward (HTTP {status}); a WebSocket per connection"
                                );
                                *via = Via::WebSocket;
                                None
                            }
                            Err(super::spdy::OpenError::Request(why)) => {
                                return Err(format!(
                                    "cannot open a port-forward to pod/{name}:{port}: {why}"
                                ));
                            }
                        }
                    }
                }
            };
            match session {
                Some(session) => session
                    .connect(port)
                    .map(|(stream, late)| Connected {
                        stream,
                        late_error: Some(late),
                    })
                    .map_err(|why| format!("port-forward to pod/{name}:{port}: {why}")),
                None => websocket(&pods, &name, port).await,
            }
        }
    })
    .await
}

/// One connection over a WebSocket of its own (kube's `portforward`, `v4.channel.k8s.io`).
async fn websocket(
    pods: &Api<Pod>,
    name: &str,
    port: u16,
) -> Result<Connected<tokio::io::DuplexStream>, String> {
    let mut pf = pods.portforward(name, &[port]).await.map_err(|e| {
        format!(
            "cannot open a port-forward to pod/{name}:{port}: {}",
            super::cluster::describe(&e)
        )
    })?;
    let stream = pf
        .take_stream(port)
        .ok_or_else(|| format!("port-forward to pod/{name}:{port} gave no stream"))?;
    let errors = pf.take_error(port);
    let late: LateError = Box::pin(async move {
        let message = match errors {
            Some(e) => e.await,
            None => None,
        };
        // Keep the websocket task alive until the stream ends.
        let _ = pf.join().await;
        message
    });
    Ok(Connected {
        stream,
        late_error: Some(late),
    })
}

/// A forward to a plain TCP address: the same relay without Kubernetes, for tests and benchmarks.
pub async fn to_tcp(target: SocketAddr) -> std::io::Result<LocalForward> {
    start(format!("tcp/{target}"), move || async move {
        tokio::net::TcpStream::connect(target)
            .await
            .map(|stream| Connected {
                stream,
                late_error: None,
            })
            .map_err(|e| format!("connect {target}: {e}"))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::{StreamFailure, classify};

    #[test]
    fn a_server_close_seen_through_the_kubelet_is_not_a_broken_forward() {
        let pod = "error forwarding port 8081 to pod 1f0c, uid : failed to execute portforward in network namespace \"/var/run/netns/cni-1\": ";
        for (tail, want) in [
            (
                "write tcp4 127.0.0.1:41234->127.0.0.1:8081: write: broken pipe",
                StreamFailure::PeerClosed,
            ),
            (
                "read tcp4 127.0.0.1:41234->127.0.0.1:8081: read: connection reset by peer",
                StreamFailure::PeerClosed,
            ),
            (
                "dial tcp4 127.0.0.1:8081: connect: connection refused",
                StreamFailure::Broken,
            ),
            (
                "pod not found (\"argocd-repo-server-x\")",
                StreamFailure::Broken,
            ),
            ("", StreamFailure::Broken),
        ] {
            assert_eq!(classify(&format!("{pod}{tail}")), want, "{tail}");
        }
    }
}
