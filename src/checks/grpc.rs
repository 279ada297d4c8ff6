//! The gRPC cases: Health/Check and VersionService over an authenticated connection, and an RPC
//! without a certificate that must die before any response.

use super::handshake::{positive_control, preferred_version};
use super::judgement::{Judgement, attempt_evidence, refusal_words};
use super::observe::Observations;
use crate::grpc::NoCertRpc;
use crate::report::{Observed, Verdict};

/// `grpc/health`: SERVING under the preferred TLS version.
pub(super) fn judge_health(obs: &Observations) -> Judgement {
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
        Some(Ok(v)) => Judgement::new(
            Verdict::Pass,
            format!(
                "build `{}`",
                v.get("version").and_then(|s| s.as_str()).unwrap_or("?")
            ),
        )
        .observed(Observed::Payload(v.clone())),
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

pub(super) fn judge_no_cert_rpc(obs: &Observations) -> Judgement {
    let control = positive_control(obs, preferred_version(obs), true);
    match (&obs.no_cert_rpc, control) {
        (Some(NoCertRpc::Answered { answer }), _) => Judgement::new(
            Verdict::Fail,
            format!("the server ANSWERED an unauthenticated RPC: {answer}"),
        )
        .observed(Observed::NoCertRpc(
            obs.no_cert_rpc.clone().expect("matched Some"),
        )),
        (Some(NoCertRpc::Inconclusive { reason }), _) => {
            Judgement::new(Verdict::Error, format!("inconclusive: {reason}"))
        }
        (Some(r @ NoCertRpc::RefusedInHandshake { connection }), Ok(_)) => Judgement::new(
            Verdict::Pass,
            format!(
                "refused during the handshake ({}); the RPC was never sent",
                refusal_words(connection)
            ),
        )
        .observed(Observed::NoCertRpc(r.clone()))
        .evidence(attempt_evidence(connection)),
        (Some(r @ NoCertRpc::DiedBeforeResponse { connection, error }), Ok(_)) => {
            Judgement::new(Verdict::Pass, format!("no response: {error}"))
                .observed(Observed::NoCertRpc(r.clone()))
                .evidence(attempt_evidence(connection))
        }
        (Some(_), Err(why)) => Judgement::new(
            Verdict::Error,
            format!("inconclusive: the RPC failed, but so does the positive control ({why})"),
        ),
        (None, _) => Judgement::new(Verdict::Error, "the RPC was not attempted"),
    }
}
