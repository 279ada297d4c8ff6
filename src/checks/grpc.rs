//! The gRPC cases: Health/Check and VersionService over an authenticated connection, and an RPC
//! without a certificate that must die before any response.

use std::collections::BTreeSet;

use super::handshake::{positive_control, preferred_version, version_refusal, version_unspeakable};
use super::judgement::{Judgement, attempt_evidence, refusal_words};
use super::observe::Observations;
use crate::grpc::{NoCertRpc, ResumedCall, ServingStatus};
use crate::probe::Alert;
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
        Some(Ok(a)) if a.status == ServingStatus::Serving => Judgement::new(
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
        Some(Err(e)) if e.code() == Some(tonic::Code::Unimplemented) => {
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
                if connection.alert == Some(Alert::PROTOCOL_VERSION)
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

/// `tls/session-resumption`: a session the server handed to a connection it refused, offered
/// again by a client without a certificate, must not reach gRPC. Judged next to the valid
/// client's admission and, for each version a session was offered under, next to the valid
/// client's own session offered the same way, resumed and served: else a refused resumption
/// proves nothing (this client may simply not resume).
pub(super) fn judge_resumption(obs: &Observations) -> Judgement {
    let Some(r) = &obs.resumption else {
        return Judgement::new(Verdict::Error, "the resumption tries were not run");
    };
    let observed = Observed::Resumption(r.clone());
    let call_words = |c: &ResumedCall| {
        let how = if c.resumed { "resumed" } else { "not resumed" };
        match &c.answer {
            Ok(answer) => format!("{how}, Health/Check answered {answer}"),
            Err(e) => format!("{how}, no answer: {e}"),
        }
    };
    let mut evidence = vec![format!(
        "{} refused attempts, {} of them handed a session; {} offered again without a certificate",
        r.refused,
        r.handed,
        r.tries.len()
    )];
    evidence.extend(r.controls.iter().map(|c| {
        format!(
            "control: the valid client's {} ({}): {}",
            c.session,
            c.version,
            call_words(c)
        )
    }));
    evidence.extend(
        r.tries
            .iter()
            .map(|t| format!("{} handed to {}: {}", t.session, t.origin, call_words(t))),
    );
    let done = |j: Judgement| j.observed(observed.clone()).evidence(evidence.clone());
    let v = preferred_version(obs);
    if let Err(why) = positive_control(obs, v, true) {
        return done(Judgement::new(
            Verdict::Error,
            format!("no verdict: the positive control failed ({why})"),
        ));
    }
    if let Some(t) = r.tries.iter().find(|t| t.reached_grpc()) {
        let how = if t.resumed {
            "the server resumed it"
        } else {
            "the server made a full handshake without one"
        };
        return done(Judgement::new(
            Verdict::Fail,
            format!(
                "{} handed to the refused attempt {} let a client without a certificate in: {how}, and Health/Check answered {}",
                t.session,
                t.origin,
                t.answer.as_deref().unwrap_or_default()
            ),
        ));
    }
    if r.refused == 0 {
        // Nothing refused (no refusal case selected, or a server that admits everyone): no
        // refused connection could be handed a session, and that proves nothing.
        return done(Judgement::new(
            Verdict::Error,
            "no verdict: no attempt of this run was refused, so no session handed to a refused connection could be offered again (the refusal cases say why)",
        ));
    }
    if r.tries.is_empty() {
        return done(Judgement::new(
            Verdict::Pass,
            format!(
                "the server handed no session (TLS 1.3 ticket, TLS 1.2 session ID or ticket) to any of the {} refused attempts: none to resume",
                r.refused
            ),
        ));
    }
    if let Some(t) = r
        .tries
        .iter()
        .find(|t| t.answer.as_ref().is_err_and(|e| e.inconclusive))
    {
        return done(Judgement::new(
            Verdict::Error,
            format!(
                "inconclusive: the session handed to {} ({})",
                t.origin,
                call_words(t)
            ),
        ));
    }
    let versions: BTreeSet<&str> = r.tries.iter().map(|t| t.version.as_str()).collect();
    for version in versions {
        let control = r.controls.iter().find(|c| c.version == version);
        if !control.is_some_and(|c| c.resumed && c.reached_grpc()) {
            return done(Judgement::new(
                Verdict::Error,
                format!(
                    "no verdict under {version}: the valid client's own session, offered the same way, was not resumed and served ({}), so a refused resumption proves nothing",
                    control
                        .map(call_words)
                        .unwrap_or_else(|| "the server handed it none".into())
                ),
            ));
        }
    }
    done(Judgement::new(
        Verdict::Pass,
        format!(
            "every session handed to a refused attempt was refused when offered again without a certificate ({} of {} offered{}); the valid client's own session resumed and was served (control)",
            r.tries.len(),
            r.handed,
            if r.handed > r.tries.len() {
                ": the first of each identity and version first"
            } else {
                ""
            }
        ),
    ))
}
