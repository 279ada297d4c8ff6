//! A judgement: the verdict one judge reaches, with its one-line reason, the structured
//! observation and the evidence lines the report prints; and the words evidence is written in.

use crate::probe::{self, ProbeOutcome};
use crate::report::{CheckResult, Observed, SkipKind, Verdict};
use crate::suite::Check;

/// A verdict with its one-line reason, observation and evidence.
pub(super) struct Judgement {
    pub(super) verdict: Verdict,
    /// For a skip: whether the case does not apply here, or was not judged for want of input.
    pub(super) skip: Option<SkipKind>,
    pub(super) reason: String,
    pub(super) observed: Observed,
    pub(super) evidence: Vec<String>,
    pub(super) duration_ms: f64,
}

impl Judgement {
    pub(super) fn new(verdict: Verdict, reason: impl Into<String>) -> Self {
        Judgement {
            verdict,
            skip: None,
            reason: reason.into(),
            observed: Observed::Nothing,
            evidence: vec![],
            duration_ms: 0.0,
        }
    }
    /// A skip: the case does not apply to this server (its TLS policy, the protocol chosen).
    pub(super) fn not_applicable(reason: impl Into<String>) -> Self {
        let mut j = Judgement::new(Verdict::Skip, reason);
        j.skip = Some(SkipKind::NotApplicable);
        j
    }
    /// A skip: the case applies, but the input it needs was not given (CA key, health URL, log).
    pub(super) fn not_judged(reason: impl Into<String>) -> Self {
        let mut j = Judgement::new(Verdict::Skip, reason);
        j.skip = Some(SkipKind::MissingInput);
        j
    }
    pub(super) fn observed(mut self, v: Observed) -> Self {
        self.observed = v;
        self
    }
    pub(super) fn evidence(mut self, e: Vec<String>) -> Self {
        self.evidence = e;
        self
    }

    /// The result `check` gets from this judgement: the one way every result is made, an
    /// endpoint's or a Kubernetes scope's. `id` is the check's, or its case's with a subject
    /// (`config/mount/argocd-server`); the severity is always the suite's.
    pub(super) fn into_result(
        self,
        check: &Check,
        id: String,
        endpoint: String,
        expected: String,
    ) -> CheckResult {
        CheckResult {
            id,
            title: check.case.title.clone(),
            suite: check.suite.clone(),
            action: check.case.action.clone(),
            requirement: check.case.requirement.clone(),
            spec: check.case.spec.clone(),
            severity: check.case.severity,
            case: check.case.id.clone(),
            controls: check.case.controls.clone(),
            verdict: self.verdict,
            skip_kind: self.skip,
            expected,
            reason: self.reason,
            observed: self.observed,
            evidence: self.evidence,
            duration_ms: self.duration_ms,
            endpoint,
            path: None,
        }
    }
}

/// How many doors per ALPN offer, in words: `7 with ALPN \`h2\`, 3 with no ALPN`.
pub(super) fn doors_by_alpn<'a>(attempts: impl IntoIterator<Item = &'a ProbeOutcome>) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for o in attempts {
        let alpn = o.alpn_words();
        match counts.iter_mut().find(|(a, _)| *a == alpn) {
            Some((_, n)) => *n += 1,
            None => counts.push((alpn, 1)),
        }
    }
    // Many offers tried once each (the ALPN dimension) read as their number.
    let (many, single): (Vec<_>, Vec<_>) = counts.iter().partition(|(_, n)| *n > 1);
    let mut words: Vec<String> = many
        .iter()
        .map(|(alpn, n)| format!("{n} with {alpn}"))
        .collect();
    if single.len() > 3 {
        words.push(format!("{} with another ALPN offer each", single.len()));
    } else {
        words.extend(single.iter().map(|(alpn, n)| format!("{n} with {alpn}")));
    }
    words.join(", ")
}

/// The evidence of one door class in one line: its attempt's, said once for all its doors
/// (which doors they are is in report.json).
pub(super) fn class_evidence(
    class: &crate::report::DoorClass,
    attempts: &[&ProbeOutcome],
) -> String {
    let members: Vec<&ProbeOutcome> = attempts
        .iter()
        .copied()
        .filter(|o| class.holds(o))
        .collect();
    format!(
        "{} of {} doors ({}): {}",
        members.len(),
        attempts.len(),
        doors_by_alpn(members),
        behaviour_words(&class.attempt)
    )
}

/// What the server did with an attempt, whatever door it came by: how it ended (the refusal, or
/// the outcome and its detail), on what basis it was accepted, whether a certificate was asked
/// for. A door class's evidence line and the coverage's behaviours both say it this way.
pub(super) fn behaviour_words(o: &ProbeOutcome) -> String {
    let mut line = match o.outcome {
        probe::Outcome::Rejected => format!("rejected {} with {}", o.stage, refusal_words(o)),
        _ => format!("{} {} ({})", o.outcome, o.stage, o.detail),
    };
    if let Some(basis) = o.accepted_by {
        line.push_str(&format!(", accepted on the basis of {basis}"));
    }
    if o.client_cert_requested {
        line.push_str(&format!(
            "; a certificate asked for ({} CA names)",
            o.acceptable_ca_names.len()
        ));
    } else if o.stage != probe::Stage::Tcp {
        line.push_str("; no certificate asked for");
    }
    line
}

pub(super) fn attempt_evidence(o: &ProbeOutcome) -> Vec<String> {
    let mut e = vec![format!(
        "{} presenting `{}` with {}: {} {} ({})",
        o.requested_version,
        o.presented.as_deref().unwrap_or("no certificate"),
        o.door_words(),
        o.outcome,
        o.stage,
        o.detail
    )];
    if let Some(basis) = o.accepted_by {
        e.push(format!("accepted on the basis of {basis}"));
    }
    if let Some(a) = &o.alert {
        e.push(format!("alert received: {a}"));
    }
    if let (Some(v), Some(c)) = (&o.tls_version, &o.cipher_suite) {
        e.push(format!("negotiated {v} with {c}"));
    }
    if o.client_cert_requested {
        e.push(format!(
            "server sent a CertificateRequest naming CAs: {}",
            if o.acceptable_ca_names.is_empty() {
                "(none listed)".to_owned()
            } else {
                o.acceptable_ca_names.join("; ")
            }
        ));
    } else if o.stage != probe::Stage::Tcp {
        e.push("server did not request a client certificate".into());
    }
    e
}

pub(super) fn refusal_words(o: &ProbeOutcome) -> String {
    match (&o.alert, o.reset, o.http_status) {
        (Some(a), _, _) => format!("alert `{a}`"),
        (None, _, Some(status)) => format!("HTTP status {status}"),
        (None, true, _) => "the connection closed without an alert".to_owned(),
        (None, false, _) => "a refusal".to_owned(),
    }
}
