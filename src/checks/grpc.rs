//! The gRPC cases: Health/Check and VersionService over an authenticated connection, and an RPC
//! without a certificate that must die before any response.

use super::handshake::{positive_control, preferred_version, version_refusal, version_unspeakable};
use super::judgement::{Judgement, attempt_evidence, refusal_words};
use super::observe::Observations;
use crate::grpc::NoCertRpc;
use crate::report::{Observed, Verdict};

/// `grpc/health`: SERVING under the preferred TLS version. With a stand-in identity there is no
/// legitimate client to call with: no verdict either way (an open server answers anyone, a closed
/// one refuses the stand-in).
pub(super) fn judge_health(obs: &Observations) -> Judgement {
    if let Some(why) = &obs.stand_in {
        return Judgement::not_judged(format!(
            "no client identity of this installation to call with: {why}"
        ));
    }
    let v = preferred_version(obs);
    match obs.grpc_health.get(&v) {
        Some(Ok(a)) if a.status == "SERVING" => Judgement::new(
            Verdict::Pass,
            format!("SERVING under {v} in {} µs", a.rpc_us),
        )
        .observed(Observed::Health(a.clone())),
        Some(Ok(a)) => Judgement::new(Verdict::Fail, format!("answered {}", a.status))
            .observed(Observed::Health(a.clone())),
        Some(Err(e)) if e.inconclusive => {
            Judgement::new(Verdict::Error, format!("inconclusive: {e}"))
        }
        Some(Err(e)) => {
            Judgement::new(Verdict::Fail, format!("the authenticated call failed: {e}"))
                .observed(Observed::CallFailed { error: e.clone() })
        }
        None => Judgement::new(Verdict::Error, "Health/Check was not run"),
    }
}

/// `grpc/version`: the build is recorded; a server without the service is not judged on it.
pub(super) fn judge_version(obs: &Observations) -> Judgement {
    match &obs.grpc_version {
        Some(Ok(v)) => {
            let build = v.get("version").and_then(|s| s.as_str()).unwrap_or("?");
            let known = crate::kubernetes::versions::knowledge_of(build);
            Judgement::new(Verdict::Pass, format!("build `{build}`; {known}"))
                .observed(Observed::Payload(v.clone()))
        }
        Some(Err(e)) if e.message.contains("UNIMPLEMENTED") || e.message.contains("(12)") => {
            Judgement::not_applicable("the server has no version.VersionService")
        }
        Some(Err(e)) if e.inconclusive => {
            Judgement::new(Verdict::Error, format!("inconclusive: {e}"))
        }
        Some(Err(e)) => Judgement::new(Verdict::Fail, format!("VersionService call failed: {e}"))
            .observed(Observed::CallFailed { error: e.clone() }),
        None => Judgement::new(Verdict::Error, "VersionService was not called"),
    }
}

/// The RPC without a certificate must die before any response under every TLS version the
/// server negotiates; a version it does not offer (or cannot negotiate) is left out, by the
/// server's own word.
pub(super) fn judge_no_cert_rpc(obs: &Observations) -> Judgement {
    if obs.no_cert_rpc.is_empty() {
        return Judgement::new(Verdict::Error, "the RPC was not attempted");
    }
    let observed = Observed::NoCertRpc(
        obs.no_cert_rpc
            .iter()
            .map(|(v, r)| (v.id().to_owned(), r.clone()))
            .collect(),
    );
    let mut lines = Vec::new();
    let mut evidence = Vec::new();
    let mut denied = Vec::new();
    for (&v, rpc) in &obs.no_cert_rpc {
        if let Some(why) = version_unspeakable(obs, v) {
            return Judgement::new(Verdict::Error, why).observed(observed);
        }
        match rpc {
            NoCertRpc::Answered { answer } => {
                return Judgement::new(
                    Verdict::Fail,
                    format!("the server ANSWERED an unauthenticated RPC under {v}: {answer}"),
                )
                .observed(observed);
            }
            NoCertRpc::Inconclusive { reason } => {
                return Judgement::new(Verdict::Error, format!("inconclusive under {v}: {reason}"))
                    .observed(observed);
            }
            NoCertRpc::RefusedInHandshake { connection }
                if connection.alert.as_deref() == Some("protocol_version")
                    || version_refusal(obs, v).is_some() =>
            {
                lines.push(format!(
                    "{v} not negotiated ({})",
                    refusal_words(connection)
                ));
            }
            NoCertRpc::RefusedInHandshake { connection } => {
                lines.push(format!(
                    "{v}: refused during the handshake ({}); the RPC was never sent",
                    refusal_words(connection)
                ));
                evidence.extend(attempt_evidence(connection));
                denied.push(v);
            }
            NoCertRpc::DiedBeforeResponse { connection, error } => {
                lines.push(format!("{v}: no response: {error}"));
                evidence.extend(attempt_evidence(connection));
                denied.push(v);
            }
        }
    }
    if denied.is_empty() {
        return Judgement::new(
            Verdict::Error,
            format!("no TLS version carried the RPC: {}", lines.join("; ")),
        )
        .observed(observed);
    }
    for &v in &denied {
        if let Err(why) = positive_control(obs, v, true) {
            return Judgement::new(
                Verdict::Error,
                format!(
                    "inconclusive: the RPC failed under {v}, but so does the positive control ({why})"
                ),
            )
            .observed(observed);
        }
    }
    Judgement::new(Verdict::Pass, lines.join("; "))
        .observed(observed)
        .evidence(evidence)
}
