//! `network/*` cases on what the in-cluster intruder pods saw: whether a pod without a
//! certificate got a session by any path (the Service, a pod IP), and whether what reached the
//! port is what the NetworkPolicies allow (a CNI that does not enforce them shows as a pod that
//! connected although a policy denies it: observed, never assumed).

use super::Finding;
use crate::kubernetes::incluster::{IntruderAttempt, Reach};
use crate::kubernetes::netpol::Admission;
use crate::kubernetes::observed::{InClusterObservation, IntruderObservation};
use crate::probe::Outcome;
use crate::suite::KubeCase;

/// One attempt in words: who, where, what the policies say, what reached the port, what TLS did.
fn side_by_side(
    intruder: &IntruderObservation,
    attempt: &IntruderAttempt,
    admission: Option<&Admission>,
) -> String {
    let policy = admission.map_or_else(
        || "policies: not read".to_owned(),
        |a| format!("policies: {}", a.describe()),
    );
    let reached = match &attempt.reach {
        Reach::Connected => "reached the port".to_owned(),
        Reach::Refused { why } => format!("connection refused ({why})"),
        Reach::TimedOut { ms } => format!("no connection within {ms} ms"),
        Reach::Unresolved { why } => format!("name did not resolve ({why})"),
    };
    let tls = attempt.tls.as_ref().map_or_else(String::new, |o| {
        format!(
            "; mTLS: {} {}{}",
            o.outcome,
            o.stage,
            o.alert.map(|a| format!(" (alert {a})")).unwrap_or_default()
        )
    });
    format!(
        "pod/{} ({}) -> {} ({}): {policy}; {reached}{tls}",
        intruder.pod,
        intruder.kind.name(),
        attempt.target,
        attempt.address
    )
}

/// `network/intruder-refused`, one subject per intruder: no attempt got a session.
pub fn judge_intruder(intruder: &IntruderObservation) -> Vec<Finding> {
    let case = KubeCase::IntruderRefused;
    let mut out = Vec::new();
    for (attempt, admission) in &intruder.attempts {
        let words = side_by_side(intruder, attempt, admission.as_ref());
        let finding = match (&attempt.reach, &attempt.tls) {
            (Reach::Connected, Some(o)) => match o.outcome {
                Outcome::Rejected => Finding::pass(case, words),
                Outcome::Accepted => Finding::fail(
                    case,
                    format!("{words}: a pod without a certificate got a session"),
                ),
                Outcome::Error | Outcome::Inconclusive => {
                    Finding::inconclusive(case, format!("{words}: neither refused nor admitted"))
                }
            },
            (Reach::Connected, None) => {
                Finding::inconclusive(case, format!("{words}: no handshake was tried"))
            }
            (Reach::Refused { .. } | Reach::TimedOut { .. }, _) => Finding::pass(case, words),
            (Reach::Unresolved { .. }, _) => Finding::inconclusive(case, words),
        };
        out.push(finding.about(intruder.kind.name()));
    }
    if out.is_empty() {
        out.push(
            Finding::inconclusive(case, format!("pod/{} tried nothing", intruder.pod))
                .about(intruder.kind.name()),
        );
    }
    out
}

/// `network/policy-enforced`: for every attempt the policies judged, whether reaching the port
/// agreed with them.
pub fn judge_policies(observed: &InClusterObservation) -> Vec<Finding> {
    let case = KubeCase::PolicyEnforced;
    if let Err(e) = &observed.policies {
        return vec![Finding::inconclusive(
            case,
            format!("the NetworkPolicies could not be read: {e}"),
        )];
    }
    let mut out = Vec::new();
    for intruder in &observed.intruders {
        for (attempt, admission) in &intruder.attempts {
            let Some(admission) = admission else { continue };
            let words = side_by_side(intruder, attempt, Some(admission));
            let connected = attempt.reach == Reach::Connected;
            out.push(match (admission, &attempt.reach) {
                (Admission::NoPolicy, _) => Finding::not_applicable(case, words),
                (_, Reach::Unresolved { .. }) => Finding::inconclusive(case, words),
                (Admission::Denied { .. }, _) if connected => Finding::fail(
                    case,
                    format!(
                        "{words}: NOT ENFORCED, a pod the policies deny reached the port (this cluster's network plugin does not enforce NetworkPolicy; mTLS is the only line)"
                    ),
                ),
                (Admission::Allowed { .. }, _) if !connected => Finding::inconclusive(
                    case,
                    format!("{words}: the policies allow it, yet the port was not reached (something else in the path blocks it)"),
                ),
                _ => Finding::pass(case, words),
            });
        }
    }
    if out.is_empty() {
        out.push(Finding::inconclusive(
            case,
            "no intruder attempt to compare",
        ));
    }
    out
}
