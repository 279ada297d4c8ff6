//! The checks: the one place where a fact becomes a verdict. Two steps, kept apart:
//! [`observe`](observe::observe) runs every probe the selected checks need (concurrently, bounded)
//! and [`evaluate`] judges each check against those observations, one file per kind of case:
//!
//! - [`handshake`]: the handshake matrix, the positive control, TLS versions that cannot carry it;
//! - [`transport`]: legacy ClientHellos, plaintext HTTP/2, server identity, TLS policy;
//! - [`grpc`]: Health/Check, VersionService, the unauthenticated RPC;
//! - [`logs`]: health endpoints and log lines;
//! - [`kubernetes`]: the Kubernetes cases, on what a Kubernetes target observed (one file per
//!   subject: the Secret, the workloads, the client components, the pods).
//!
//! A negative handshake proves nothing without the positive control on the same endpoint and TLS
//! version, so the valid client is always observed, even when its own check is filtered out.

mod doors;
mod grpc;
mod handshake;
mod judgement;
pub mod kubernetes;
mod logs;
mod observe;
mod transport;

#[cfg(test)]
mod tests;

pub use doors::{AlpnOffer, Dimension, Door, DoorSpace, HandBuilt, fresh_seed, unregistered_alpn};
pub use handshake::version_refusal;
pub use observe::{AttemptKey, Observations, ProbeSettings, observe};

use judgement::Judgement;

use crate::endpoint::{Endpoint, Protocol};
use crate::report::{CheckResult, Verdict};
use crate::suite::{CaseKind, Check, Expect};

/// Judges one check against the observations.
pub fn evaluate(check: &Check, obs: &Observations, endpoint: &Endpoint) -> CheckResult {
    let grpc = endpoint.protocol == Protocol::Grpc;
    let expected = expected_text(&check.case.kind, endpoint.protocol);
    let relay_failures: Vec<String> = endpoint
        .relays
        .iter()
        .filter_map(|r| r.failure_summary())
        .collect();
    let mut j = if let Some(why) = &obs.protocol_mismatch {
        Judgement::new(Verdict::Error, format!("no verdict: {why}"))
    } else if check.case.grpc_only && !grpc {
        Judgement::not_applicable(format!(
            "gRPC check; the endpoint was probed with --protocol {}",
            endpoint.protocol.name()
        ))
    } else if let Some(why) = obs
        .no_session
        .as_deref()
        .filter(|_| needs_session(&check.case.kind))
    {
        Judgement::new(Verdict::Error, format!("no verdict: {why}"))
    } else {
        judge(check, obs, endpoint, grpc)
    };
    if let Some(why) = &obs.no_session
        && obs.protocol_mismatch.is_none()
        && matches!(check.case.kind, CaseKind::PlaintextH2c)
        && j.verdict != Verdict::Fail
    {
        // Without TLS on the port, "no HTTP/2 in plaintext" is no evidence for the controls it
        // maps to; an HTTP/2 answer in plaintext is a finding of its own and stands.
        j = Judgement::new(Verdict::Error, format!("no verdict: {why}"));
    }
    if !relay_failures.is_empty() && j.verdict != Verdict::Skip {
        // A relay that drops a connection looks like a server refusing it: nothing seen through
        // a failing port-forward is evidence either way.
        j.evidence
            .push(format!("observed as {}: {}", j.verdict, j.reason));
        j.verdict = Verdict::Error;
        j.reason = format!(
            "no verdict: the port-forward failed while probing ({}); a refusal seen through it may be the relay's",
            relay_failures.join("; ")
        );
    }
    let mut result = j.into_result(check, check.id.clone(), endpoint.label.clone(), expected);
    result.path = Some(if endpoint.relays.is_empty() {
        crate::report::ProbePath::Direct
    } else {
        crate::report::ProbePath::PortForward
    });
    result
}

/// Whether a case is judged on what a TLS session showed (a handshake, what the server
/// presented or negotiated, a gRPC call, the refusals it logged): no verdict on a port where the
/// valid client got none. The health port, the log lines of its start and the Kubernetes objects
/// are facts of their own; plaintext HTTP/2 is settled in [`evaluate`].
fn needs_session(kind: &CaseKind) -> bool {
    match kind {
        CaseKind::Handshake { .. }
        | CaseKind::LegacyHello
        | CaseKind::ServerIdentity
        | CaseKind::TrustStore
        | CaseKind::TlsPolicy
        | CaseKind::GrpcHealth
        | CaseKind::GrpcVersion
        | CaseKind::GrpcNoCertRpc
        | CaseKind::SessionResumption
        | CaseKind::LogRejections => true,
        CaseKind::PlaintextH2c
        | CaseKind::HttpProbe { .. }
        | CaseKind::LogLine { .. }
        | CaseKind::Finding { .. } => false,
    }
}

pub(crate) fn expected_text(kind: &CaseKind, protocol: Protocol) -> String {
    match kind {
        CaseKind::Handshake {
            expect: Expect::Rejected,
            ..
        } => match protocol {
            Protocol::Https => "refused (alert, reset, or an HTTP refusal status) before any protected content, at every door tried (each SNI and ALPN offer)".into(),
            _ => "rejected (alert or reset) before any application data, at every door tried (each SNI and ALPN offer)".into(),
        },
        CaseKind::Handshake {
            expect: Expect::Accepted,
            ..
        } => match protocol {
            Protocol::Grpc => "accepted, and gRPC Health/Check answers SERVING".into(),
            Protocol::Https => "accepted: an HTTP answer that is not a refusal".into(),
            Protocol::Tls => "accepted: the server shows it (data, session ticket, TLS 1.2 Finished)".into(),
        },
        CaseKind::LegacyHello => "the legacy-only ClientHello is refused".into(),
        CaseKind::PlaintextH2c => "no HTTP/2 answer without TLS".into(),
        CaseKind::ServerIdentity => {
            "the server chain verifies against the server CA for the server name".into()
        }
        CaseKind::TrustStore => {
            "every CA name the CertificateRequest advertises is one of the client CA file's CAs or Argo CD's health-check issuer".into()
        }
        CaseKind::TlsPolicy => {
            "the valid client negotiates at least one of TLS 1.2 and 1.3; what each version did is recorded".into()
        }
        CaseKind::GrpcHealth => "SERVING".into(),
        CaseKind::GrpcVersion => "VersionService answers with the build".into(),
        CaseKind::GrpcNoCertRpc => "the server ends the connection before any response".into(),
        CaseKind::SessionResumption => {
            "no session handed to a refused connection reaches gRPC when offered again without a certificate".into()
        }
        CaseKind::HttpProbe { path } => format!("GET {path} answers 200"),
        CaseKind::LogLine { prefix } => format!("a log line starting `{prefix}`"),
        CaseKind::LogRejections => {
            "a grpc-go `ServerHandshake(...) failed: ...` line for the refused handshakes".into()
        }
        CaseKind::Finding { .. } => "the Kubernetes objects, pods and logs hold as required".into(),
    }
}

fn judge(check: &Check, obs: &Observations, endpoint: &Endpoint, grpc: bool) -> Judgement {
    match &check.case.kind {
        CaseKind::Finding { .. } => Judgement::not_judged(
            "judged on Kubernetes objects, pods and logs: needs --target kind or --target cluster",
        ),
        CaseKind::Handshake { present, expect } => {
            handshake::judge_handshake(check, *present, *expect, obs, grpc)
        }
        CaseKind::LegacyHello => {
            let v = check.version.expect("legacy checks are per version");
            match obs.legacy.get(&v) {
                Some(o) => transport::judge_expect_refusal(o, &format!("{v} ClientHello")),
                None => Judgement::new(Verdict::Error, "attempt was not run"),
            }
        }
        CaseKind::PlaintextH2c => transport::judge_plaintext(obs),
        CaseKind::ServerIdentity => transport::judge_server_identity(obs, endpoint),
        CaseKind::TlsPolicy => transport::judge_tls_policy(obs),
        CaseKind::TrustStore => transport::judge_trust_store(obs),
        CaseKind::GrpcHealth => grpc::judge_health(obs),
        CaseKind::GrpcVersion => grpc::judge_version(obs),
        CaseKind::GrpcNoCertRpc => grpc::judge_no_cert_rpc(obs),
        CaseKind::SessionResumption => grpc::judge_resumption(obs),
        CaseKind::HttpProbe { path } => logs::judge_http(endpoint, obs, path),
        CaseKind::LogLine { prefix } => match logs::log_lines(endpoint, obs) {
            Ok((lines, origin)) => logs::judge_log(prefix, lines, &origin),
            Err(j) => *j,
        },
        CaseKind::LogRejections => match logs::log_lines(endpoint, obs) {
            Ok((lines, origin)) => {
                let configured = match &endpoint.logs {
                    Some(crate::endpoint::LogSource::Remote(r)) => r.configured_grpc_log_level(),
                    _ => None,
                };
                logs::judge_rejections_logged(obs, lines, &origin, configured)
            }
            Err(j) => *j,
        },
    }
}
