//! One handshake attempt, one classified [`ProbeOutcome`].
//!
//! The rule that matters most: under TLS 1.3 the client's handshake completes *before* the server
//! has judged the client certificate, and a rejection arrives as an alert on the first read. So an
//! attempt is only `accepted` once the server has shown it, and the outcome records on what basis
//! ([`AcceptanceBasis`]): for h2 its SETTINGS frame, for HTTPS its HTTP response, for plain TLS 1.3
//! application data or a session ticket (servers issue one only after the client's Finished, i.e.
//! after they judged its certificate), and only failing all of those, silence: no alert for the
//! whole silence window while the connection stayed open. A timeout or a TCP failure proves nothing
//! and is `inconclusive`, never a pass.

pub mod legacy;
pub mod plaintext;
pub mod speech;
pub mod suites;

mod client;
mod crafted;
mod crafted12;
mod outcome;
mod wire;

pub use client::{Connected, Resume, Session, SessionJar, connect, provider};
pub use crafted::CraftedStream;
pub use outcome::*;
pub use wire::Segmented;
pub use wire::{Alert, H2_EMPTY_SETTINGS, H2_PREFACE, describe_bytes, starts_with_h2_settings};
pub(crate) use wire::{
    H2Answer, PeerSaid, classify_io, micros, read_h2_answer, read_h2_answer_after, tcp_connect,
};

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Runs one attempt end to end: handshake, then the acceptance proof.
pub async fn attempt(req: &ProbeRequest) -> ProbeOutcome {
    match req.craft {
        Some(craft) => {
            let connected = match req.version {
                TlsVersion::Tls12 => crafted12::connect(req, craft).await,
                _ => crafted::connect(req, craft).await,
            };
            match connected {
                Ok(connected) => prove(req, connected).await,
                Err(out) => out,
            }
        }
        None => {
            let alpn: Vec<&[u8]> = req.alpn.iter().map(|p| p.as_bytes()).collect();
            match connect(req, &alpn).await {
                Ok(connected) => prove(req, connected).await,
                Err(out) => out,
            }
        }
    }
}

/// The acceptance proof after a completed client handshake.
async fn prove<S>(req: &ProbeRequest, connected: Connected<S>) -> ProbeOutcome
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    // A gRPC server met without `h2` (another door) may speak anything past TLS: its first
    // answer of any kind is the admission, an HTTP refusal status or a close its refusal.
    if req.proof == AcceptanceProof::H2Settings && req.alpn != ["h2"] {
        return prove_any_answer(req, connected).await;
    }
    prove_acceptance(req, connected).await
}

/// Acceptance past TLS under an ALPN the endpoint's clients do not offer: whatever the server
/// says first (HTTP/2 SETTINGS, an HTTP/1.1 status that is not a refusal, any other data) shows
/// it admitted the client; if it waits, an HTTP/1.1 request asks it.
async fn prove_any_answer<S>(req: &ProbeRequest, connected: Connected<S>) -> ProbeOutcome
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Connected {
        mut stream,
        mut outcome,
        started,
        tickets: _,
    } = connected;
    let deadline = started + req.timeout;
    let first_word = (Instant::now() + FIRST_WORD_WINDOW).min(deadline);
    match read_h2_answer(&mut stream, first_word).await {
        H2Answer::Settings => {
            outcome.accept_answer(AcceptanceBasis::H2Settings, H2_ADMITTED.into());
        }
        H2Answer::Other(seen) => {
            outcome.accept_answer(
                AcceptanceBasis::ApplicationData,
                format!(
                    "server sent application data: {}",
                    wire::describe_bytes(&seen)
                ),
            );
        }
        H2Answer::Closed(_) => closed_after_handshake(&mut outcome),
        H2Answer::Failed(e) => apply_post_handshake_error(&mut outcome, &e),
        H2Answer::Silent(_) => match ask_http(&mut stream, &req.server_name, deadline).await {
            Ok(HttpStatus::NotHttp(seen)) => {
                outcome.accept_answer(
                    AcceptanceBasis::ApplicationData,
                    format!(
                        "server answered GET / with application data: {}",
                        wire::describe_bytes(&seen)
                    ),
                );
            }
            Ok(answer) => judge_http_answer(&mut outcome, answer),
            Err(e) => apply_post_handshake_error(&mut outcome, &e),
        },
    }
    let _ = tokio::time::timeout(Duration::from_millis(50), stream.shutdown()).await;
    outcome.timings.total_us = micros(started);
    outcome
}

async fn prove_acceptance<S>(req: &ProbeRequest, connected: Connected<S>) -> ProbeOutcome
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Connected {
        mut stream,
        mut outcome,
        started,
        tickets,
    } = connected;
    let deadline = started + req.timeout;
    match req.proof {
        AcceptanceProof::H2Settings => {
            // Let the server speak first: HTTP/2 servers (grpc-go, Go, hyper) send SETTINGS right
            // after the handshake, and a refusing one its alert. Writing first races with the
            // refusal: the server closes with our bytes unread, its kernel resets the connection,
            // and the alert can be lost on our side.
            let first_word = (Instant::now() + FIRST_WORD_WINDOW).min(deadline);
            let answer = match read_h2_answer(&mut stream, first_word).await {
                H2Answer::Silent(seen) => {
                    // A server that waits for our preface before it says anything.
                    let mut hello = H2_PREFACE.to_vec();
                    hello.extend_from_slice(&H2_EMPTY_SETTINGS);
                    match stream.write_all(&hello).await {
                        Ok(()) => read_h2_answer_after(&mut stream, seen, deadline).await,
                        Err(e) => H2Answer::Failed(read_after_failed_write(&mut stream, e).await),
                    }
                }
                answer => answer,
            };
            {
                match answer {
                    H2Answer::Settings => {
                        outcome.accept_answer(AcceptanceBasis::H2Settings, H2_ADMITTED.into());
                    }
                    H2Answer::Other(seen) => outcome.other_protocol(
                        "server sent application data that is not HTTP/2 SETTINGS",
                        &seen,
                    ),
                    H2Answer::Closed(_) => closed_after_handshake(&mut outcome),
                    H2Answer::Silent(_) => {
                        outcome.outcome = Outcome::Inconclusive;
                        outcome.detail = format!(
                            "handshake completed but neither HTTP/2 SETTINGS nor an alert arrived within {} ms",
                            req.timeout.as_millis()
                        );
                    }
                    H2Answer::Failed(e) => apply_post_handshake_error(&mut outcome, &e),
                }
            }
        }
        AcceptanceProof::Https => match ask_http(&mut stream, &req.server_name, deadline).await {
            Ok(answer) => judge_http_answer(&mut outcome, answer),
            Err(e) => apply_post_handshake_error(&mut outcome, &e),
        },
        AcceptanceProof::Tls if req.version == TlsVersion::Tls12 => {
            // In TLS 1.2 the server's Finished comes after it judged the client certificate: a
            // completed client handshake is the server's acceptance. A server that sent no
            // CertificateRequest judged nothing, and the words must not say it did.
            let detail = if outcome.client_cert_requested {
                "TLS 1.2 handshake completed: the server's Finished followed its check of the client's certificate"
            } else {
                "TLS 1.2 handshake completed without a CertificateRequest: the server asked for no client certificate and verified none"
            };
            outcome.accept(AcceptanceBasis::Tls12Finished, detail.into());
        }
        AcceptanceProof::Tls => {
            let silence = req.silence.unwrap_or(req.timeout).min(req.timeout);
            let silence_end = (Instant::now() + silence).min(deadline);
            let mut buf = vec![0u8; 4096];
            tokio::select! {
                biased;
                _ = tickets.issued.notified() => outcome.accept(
                    AcceptanceBasis::SessionTicket,
                    "server issued a TLS 1.3 session ticket after the client's Finished: it accepted the client".into(),
                ),
                read = tokio::time::timeout_at(silence_end.into(), stream.read(&mut buf)) => match read {
                    Err(_) => outcome.accept(
                        AcceptanceBasis::Silence,
                        format!(
                            "no alert, data or session ticket for {} ms while the connection stayed open",
                            silence.as_millis()
                        ),
                    ),
                    Ok(Ok(0)) => closed_after_handshake(&mut outcome),
                    Ok(Ok(n)) => {
                        outcome.accept_answer(
                            AcceptanceBasis::ApplicationData,
                            format!("server sent {n} bytes of application data"),
                        );
                    }
                    Ok(Err(e)) => apply_post_handshake_error(&mut outcome, &e),
                },
            }
        }
    }
    outcome.session_ticket = tickets.seen.load(std::sync::atomic::Ordering::SeqCst);
    // Best effort: say goodbye properly so servers do not log a reset for accepted probes.
    let _ = tokio::time::timeout(Duration::from_millis(50), stream.shutdown()).await;
    outcome.timings.total_us = micros(started);
    outcome
}

/// The server's SETTINGS frame after the handshake, in words.
const H2_ADMITTED: &str = "server sent its HTTP/2 SETTINGS frame: the client was admitted";

/// How long to let the server speak first after the handshake before writing to it.
pub(crate) const FIRST_WORD_WINDOW: Duration = Duration::from_millis(300);

/// A server that refuses right after the handshake sends its alert and closes; a write racing
/// with that fails (broken pipe, reset) while the alert still waits in the receive queue. Read it:
/// the alert, when there is one, is the server's own word and better evidence than our failed
/// write.
async fn read_after_failed_write<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    write_error: std::io::Error,
) -> std::io::Error {
    let mut buf = [0u8; 512];
    match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
        Ok(Err(e)) if matches!(classify_io(&e), PeerSaid::Alert(_)) => e,
        _ => write_error,
    }
}

fn closed_after_handshake(outcome: &mut ProbeOutcome) {
    outcome.outcome = Outcome::Rejected;
    outcome.reset = true;
    outcome.detail =
        "server closed the connection after the handshake, before any application data".into();
}

/// Sends `GET /` and reads the status line. A write the server cut short gives its alert when
/// one is waiting (see [`read_after_failed_write`]).
async fn ask_http<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    server_name: &str,
    deadline: Instant,
) -> std::io::Result<HttpStatus> {
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {server_name}\r\nUser-Agent: argocd-mtls-verify\r\nConnection: close\r\n\r\n"
    );
    match stream.write_all(request.as_bytes()).await {
        Ok(()) => Ok(read_http_status(stream, deadline).await),
        Err(e) => Err(read_after_failed_write(stream, e).await),
    }
}

/// What came back for the HTTPS probe's request.
enum HttpStatus {
    /// A status line with this code.
    Status(u16),
    /// Bytes that are not an HTTP/1.x status line.
    NotHttp(Vec<u8>),
    /// The connection closed before a status line.
    Closed,
    /// Nothing before the deadline.
    Silent,
    /// A read error.
    Failed(std::io::Error),
}

async fn read_http_status<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    deadline: Instant,
) -> HttpStatus {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        if let Some(end) = seen.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&seen[..end]).into_owned();
            let mut parts = line.split(' ');
            return match (
                parts.next(),
                parts.next().and_then(|c| c.parse::<u16>().ok()),
            ) {
                (Some(v), Some(code)) if v.starts_with("HTTP/1.") => HttpStatus::Status(code),
                _ => HttpStatus::NotHttp(seen),
            };
        }
        if seen.len() > 512 {
            return HttpStatus::NotHttp(seen);
        }
        match tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await {
            Err(_) => return HttpStatus::Silent,
            Ok(Ok(0)) if seen.is_empty() => return HttpStatus::Closed,
            Ok(Ok(0)) => return HttpStatus::NotHttp(seen),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return HttpStatus::Failed(e),
        }
    }
}

fn judge_http_answer(outcome: &mut ProbeOutcome, answer: HttpStatus) {
    match answer {
        HttpStatus::Status(code) => {
            outcome.stage = Stage::Application;
            outcome.http_status = Some(code);
            if HTTP_REFUSAL_STATUSES.contains(&code) {
                outcome.outcome = Outcome::Rejected;
                outcome.detail = format!(
                    "server refused at the HTTP layer with status {code}, before any protected content"
                );
            } else {
                outcome.accept(
                    AcceptanceBasis::HttpResponse,
                    format!("server answered GET / with HTTP status {code}"),
                );
            }
        }
        HttpStatus::NotHttp(seen) => outcome.other_protocol(
            "server answered GET / with something that is not HTTP/1.x",
            &seen,
        ),
        HttpStatus::Closed => closed_after_handshake(outcome),
        HttpStatus::Silent => {
            outcome.outcome = Outcome::Inconclusive;
            outcome.detail = "handshake completed but no HTTP answer and no alert arrived".into();
        }
        HttpStatus::Failed(e) => apply_post_handshake_error(outcome, &e),
    }
}

fn apply_post_handshake_error(outcome: &mut ProbeOutcome, e: &std::io::Error) {
    match classify_io(e) {
        PeerSaid::Alert(a) => {
            outcome.outcome = Outcome::Rejected;
            outcome.detail =
                format!("server sent alert `{a}` after the client's handshake completed");
            outcome.alert = Some(a);
        }
        PeerSaid::Reset(why) => {
            outcome.outcome = Outcome::Rejected;
            outcome.reset = true;
            outcome.detail = format!(
                "connection reset after the handshake, before any application data ({why})"
            );
        }
        PeerSaid::Other(why) => {
            outcome.outcome = Outcome::Error;
            outcome.detail = format!("after the handshake: {why}");
        }
    }
}

/// Runs attempts concurrently, at most `limit` at a time, preserving input order in the output.
pub async fn attempt_all(requests: Vec<ProbeRequest>, limit: usize) -> Vec<ProbeOutcome> {
    attempt_all_counted(requests, limit, &|| {}).await
}

/// [`attempt_all`], calling `finished` as each attempt ends. An attempt that ends inconclusive
/// (no answer, no alert, a timeout) is made once more on a fresh connection: a busy server's one
/// slow answer is no evidence either way, and the second try's answer, when it comes, is the
/// server's own act ([`settle`]).
pub async fn attempt_all_counted(
    requests: Vec<ProbeRequest>,
    limit: usize,
    finished: &(dyn Fn() + Sync),
) -> Vec<ProbeOutcome> {
    use futures::StreamExt;
    futures::stream::iter(requests)
        .map(|req| async move {
            let outcome = settle(|| attempt(&req)).await;
            finished();
            outcome
        })
        .buffered(limit.max(1))
        .collect()
        .await
}

/// Runs `try_once`, and once more if the first outcome is inconclusive; the second outcome is
/// kept, its detail saying what the first one was.
pub async fn settle<F, Fut>(try_once: F) -> ProbeOutcome
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ProbeOutcome>,
{
    let first = try_once().await;
    if first.outcome != Outcome::Inconclusive {
        return first;
    }
    let mut second = try_once().await;
    second.detail = if second.outcome == Outcome::Inconclusive {
        format!("{} (twice: on a second try too)", second.detail)
    } else {
        format!(
            "{} (on a second try: the first got no answer: {})",
            second.detail, first.detail
        )
    };
    second
}

/// One TLS 1.3 attempt without a client certificate at the front door (configured SNI, `h2`):
/// a run's baseline, the reading of what the running server announces (its CertificateRequest),
/// and an intruder pod's try.
pub async fn no_certificate_attempt(
    addr: std::net::SocketAddr,
    server_name: &str,
    timeout: std::time::Duration,
    silence: Option<std::time::Duration>,
) -> ProbeOutcome {
    attempt(&ProbeRequest {
        addr,
        server_name: server_name.to_owned(),
        sni: Sni::Configured,
        version: TlsVersion::Tls13,
        alpn: AcceptanceProof::H2Settings.front_alpn(),
        identity: None,
        server_roots: vec![],
        proof: AcceptanceProof::H2Settings,
        timeout,
        silence,
        resume: Resume::Never,
        kx_group: None,
        sig_family: None,
        framing: None,
        craft: None,
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An inconclusive attempt is made once more; a definite first answer is never repeated.
    #[tokio::test]
    async fn an_inconclusive_attempt_is_tried_once_more() {
        let outcome = |o: Outcome, detail: &str| {
            let mut p = ProbeOutcome::blank(TlsVersion::Tls13, None);
            p.outcome = o;
            p.detail = detail.into();
            p
        };
        let tries = &std::sync::atomic::AtomicUsize::new(0);
        let scripted = |script: Vec<ProbeOutcome>| {
            tries.store(0, std::sync::atomic::Ordering::SeqCst);
            move || {
                let n = tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let next = script[n.min(script.len() - 1)].clone();
                async move { next }
            }
        };
        let refused = settle(scripted(vec![outcome(Outcome::Rejected, "alert")])).await;
        assert_eq!(
            (refused.outcome, refused.detail.as_str()),
            (Outcome::Rejected, "alert")
        );
        assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), 1);
        let late = settle(scripted(vec![
            outcome(Outcome::Inconclusive, "no HTTP answer"),
            outcome(Outcome::Rejected, "HTTP 400"),
        ]))
        .await;
        assert_eq!(late.outcome, Outcome::Rejected);
        assert!(
            late.detail.contains("first got no answer: no HTTP answer"),
            "{}",
            late.detail
        );
        assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), 2);
        let silent = settle(scripted(vec![outcome(Outcome::Inconclusive, "silent")])).await;
        assert_eq!(silent.outcome, Outcome::Inconclusive);
        assert!(silent.detail.contains("twice"), "{}", silent.detail);
        assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn settings_frame_detection() {
        let cases: [(&[u8], bool); 5] = [
            (&[0, 0, 0, 4, 0, 0, 0, 0, 0], true),
            (
                &[
                    0, 0, 12, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100, 0, 4, 0, 1, 0, 0,
                ],
                true,
            ),
            (&[0, 0, 0, 4, 1, 0, 0, 0, 0], false), // SETTINGS ACK, not the server's own
            (&[0, 0, 8, 7, 0, 0, 0, 0, 0], false), // GOAWAY
            (&[0x15, 3, 3, 0, 2, 2, 48, 0, 0], false), // a TLS alert record
        ];
        for (bytes, want) in cases {
            assert_eq!(starts_with_h2_settings(bytes), want, "{bytes:?}");
        }
    }

    #[test]
    fn first_bytes_are_described_in_words() {
        let cases: [(&[u8], &str); 6] = [
            (
                &[0x15, 3, 3, 0, 2, 2, 50],
                "a TLS fatal alert `decode_error`",
            ),
            (
                b"HTTP/1.1 400 Bad Request\r\n",
                "an HTTP/1.x response `HTTP/1.1 400 Bad Request`",
            ),
            (&[0, 0, 0, 4, 0, 0, 0, 0, 0], "an HTTP/2 SETTINGS frame"),
            (
                &[0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                "an HTTP/2 GOAWAY frame (PROTOCOL_ERROR)",
            ),
            (b"SSH-2.0-OpenSSH_9.2\r\n", "text `SSH-2.0-OpenSSH_9.2`"),
            (&[1, 2, 3], "first bytes 010203"),
        ];
        for (bytes, want) in cases {
            assert_eq!(describe_bytes(bytes), want);
        }
    }

    #[test]
    fn alert_names_follow_the_rfcs() {
        assert_eq!(Alert(116).to_string(), "certificate_required");
        assert_eq!(Alert(48).to_string(), "unknown_ca");
        assert_eq!(Alert(45).to_string(), "certificate_expired");
        assert_eq!(Alert(42).to_string(), "bad_certificate");
        assert_eq!(Alert(200).to_string(), "alert_200");
        assert_eq!(
            Alert::from_name("certificate_required"),
            Some(Alert::CERTIFICATE_REQUIRED)
        );
        assert_eq!(Alert::from_name("alert_200"), Some(Alert(200)));
        assert_eq!(Alert::from_name("certificate-required"), None);
        assert_eq!(
            serde_json::to_string(&Alert::NO_APPLICATION_PROTOCOL).unwrap(),
            "\"no_application_protocol\""
        );
    }

    #[test]
    fn versions_parse_in_the_usual_spellings() {
        for (s, v) in [
            ("1.2", TlsVersion::Tls12),
            ("tls1.3", TlsVersion::Tls13),
            ("TLSv1.0", TlsVersion::Tls10),
        ] {
            assert_eq!(TlsVersion::parse(s), Some(v));
        }
        assert_eq!(TlsVersion::parse("1.4"), None);
    }
}
