//! What a check saw, as report.json records it under `observed`: one typed shape per kind of
//! case, serialized only here (untagged, so each keeps the JSON it always had).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::endpoint::HttpAnswer;
use crate::grpc::{CallError, HealthAnswer, NoCertRpc};
use crate::probe::{ProbeOutcome, ServerChain};

/// A check's observation.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Observed {
    /// Nothing was observed (a check not judged, or skipped): `null`.
    #[default]
    Nothing,
    /// Every door of a refusal case, grouped by how the attempts there ended: each class's
    /// attempt is recorded once, with the doors that ended the same way.
    Doors {
        /// The classes, in the order of their first door.
        door_classes: Vec<DoorClass>,
        /// For the identity tried at every door: what its attempts covered.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        coverage: Vec<Coverage>,
    },
    /// Every attempt of a refusal case, one per door (what reports written before door classes
    /// hold; read, never written).
    Attempts {
        /// The attempts, by door.
        attempts: Vec<ProbeOutcome>,
    },
    /// The valid client's attempt, and the Health/Check made on it.
    Admission {
        /// The handshake.
        attempt: ProbeOutcome,
        /// Health/Check under the same version, when it was called.
        grpc_health: Option<HealthSeen>,
    },
    /// One attempt (plaintext HTTP/2, a legacy ClientHello).
    Attempt {
        /// The attempt.
        attempt: ProbeOutcome,
    },
    /// The certificate chain the server presented to the valid client.
    ServerIdentity {
        /// The chain and whether it verified.
        server_chain: ServerChain,
        /// The version it was seen under.
        tls_version: Option<String>,
    },
    /// What each TLS version did for the valid client, by version id (`tls1.2`).
    TlsPolicy(BTreeMap<String, PolicyLine>),
    /// A Health/Check answer.
    Health(HealthAnswer),
    /// An authenticated call that failed.
    CallFailed {
        /// Why.
        error: CallError,
    },
    /// What happened to the RPC sent without a certificate, by TLS version id (`tls1.3`).
    NoCertRpc(BTreeMap<String, NoCertRpc>),
    /// An HTTP answer from the health port.
    Http(HttpAnswer),
    /// A log line found, and the value after its prefix.
    LogLine {
        /// The line.
        line: String,
        /// The value after the prefix.
        value: String,
    },
    /// How many log lines were searched without finding the line.
    LogSearched {
        /// Lines searched.
        lines: usize,
    },
    /// Sessions handed to refused attempts and the calls that offered them again without a
    /// certificate, with the valid client's own session as control.
    Resumption(crate::grpc::Resumption),
    /// Refused attempts against the refusal lines the server logged.
    LoggedRefusals {
        /// Attempts this run saw refused.
        refused_attempts: usize,
        /// Refusal lines in the log.
        logged_refusals: usize,
        /// Lines per cause.
        causes: BTreeMap<String, usize>,
    },
    /// The findings a Kubernetes case folded, in words.
    Findings {
        /// One per finding.
        findings: Vec<String>,
    },
    /// The client CAs the server announced against those the operator approved.
    TrustStore {
        /// The acceptable CA names of its CertificateRequests, sorted.
        advertised_ca_names: Vec<String>,
        /// The names the run approves: the client CA file's CAs and Argo CD's health-check issuer.
        approved_ca_names: Vec<String>,
    },
    /// The VersionService's answer, as the server gave it (or, read back from an older report,
    /// whatever that report recorded).
    Payload(serde_json::Value),
}

/// What the attempts of the identity tried at every door covered in one dimension of the
/// ClientHello, under one TLS version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Coverage {
    /// `server name (SNI)` or `ALPN offer`.
    pub dimension: String,
    /// Doors of this dimension tried.
    pub variants: usize,
    /// Distinct behaviours among them and the front door.
    pub behaviours: usize,
    /// Each behaviour unlike the front door's, in words, with how many doors showed it and the
    /// first of them (named even when the server refused there).
    pub apart: Vec<String>,
    /// Why the dimension's doors were not judged, when they were not (their premise failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unjudged: Option<String>,
}

impl Coverage {
    /// The behaviours unlike the front door's, or why the dimension's doors were not judged.
    pub fn words(&self) -> String {
        match &self.unjudged {
            Some(why) => format!("not judged: {why}"),
            None => self.apart.join("; "),
        }
    }
}

/// Doors whose attempts ended the same way: the same outcome, stage, alert, version, suite,
/// ALPN chosen, server certificates, CertificateRequest and acceptance (timings and the wording
/// of the detail aside: the class's attempt keeps its own). Whether
/// the server's chain verified for the name a door sent is the server identity check's matter:
/// when the doors of a class differ in it, the class's attempt says neither (`verified` unset).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DoorClass {
    /// Each door, in words: `SNI \`localhost\`, ALPN \`h2\``.
    pub doors: Vec<String>,
    /// The attempt at the first of them.
    pub attempt: ProbeOutcome,
}

impl DoorClass {
    /// Groups `(door words, attempt)` pairs into classes, in the order of their first door.
    pub fn group<'a>(attempts: impl IntoIterator<Item = (String, &'a ProbeOutcome)>) -> Vec<Self> {
        let mut classes: Vec<(ProbeOutcome, DoorClass)> = Vec::new();
        for (door, attempt) in attempts {
            let key = Self::key(attempt);
            match classes.iter_mut().find(|(k, _)| *k == key) {
                Some((_, class)) => {
                    class.doors.push(door);
                    let chain = &mut class.attempt.server_chain;
                    if chain.verified != attempt.server_chain.verified {
                        chain.verified = None;
                        chain.verify_error = None;
                        chain.verify_failure = None;
                    }
                }
                None => classes.push((
                    key,
                    DoorClass {
                        doors: vec![door],
                        attempt: attempt.clone(),
                    },
                )),
            }
        }
        classes.into_iter().map(|(_, class)| class).collect()
    }

    /// Whether `attempt` belongs to this class.
    pub fn holds(&self, attempt: &ProbeOutcome) -> bool {
        Self::key(attempt) == Self::key(&self.attempt)
    }

    /// What makes two attempts one class: the attempt without its door and timings.
    fn key(attempt: &ProbeOutcome) -> ProbeOutcome {
        let mut key = attempt.clone();
        key.sni = None;
        key.alpn_offered.clear();
        key.group_offered = None;
        key.signatures_offered = None;
        key.framing = None;
        key.crafted = None;
        // That the hand-built client sent its whole flight is its own doing, not the server's.
        key.flight_read = None;
        key.timings = Default::default();
        key.server_chain.verified = None;
        key.server_chain.verify_error = None;
        key.server_chain.verify_failure = None;
        key.detail.clear();
        key
    }
}

/// Health/Check as the valid client's case records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum HealthSeen {
    /// It answered.
    Answer {
        /// `SERVING`, ...
        status: crate::grpc::ServingStatus,
        /// Round trip, microseconds.
        rpc_us: u64,
    },
    /// It failed.
    Failed {
        /// Why.
        error: CallError,
    },
}

/// One TLS version's line of `tls/policy`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PolicyLine {
    /// What the version did, in words.
    pub line: String,
    /// The alert, if the server sent one.
    pub alert: Option<crate::probe::Alert>,
    /// The cipher suite, if one was negotiated.
    pub cipher_suite: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The JSON each shape writes is the report.json contract; what an older report recorded in a
    /// shape we no longer write still reads back.
    #[test]
    fn shapes_serialize_as_the_report_contract_says() {
        let cases = [
            (Observed::Nothing, json!(null)),
            (Observed::LogSearched { lines: 3 }, json!({ "lines": 3 })),
            (
                Observed::LoggedRefusals {
                    refused_attempts: 2,
                    logged_refusals: 1,
                    causes: BTreeMap::from([("tls: bad certificate".to_owned(), 1)]),
                },
                json!({ "refused_attempts": 2, "logged_refusals": 1, "causes": { "tls: bad certificate": 1 } }),
            ),
            (
                Observed::TlsPolicy(BTreeMap::from([(
                    "tls1.3".to_owned(),
                    PolicyLine {
                        line: "tls1.3 negotiated".into(),
                        alert: None,
                        cipher_suite: Some("TLS13_AES_128_GCM_SHA256".into()),
                    },
                )])),
                json!({ "tls1.3": { "line": "tls1.3 negotiated", "alert": null, "cipher_suite": "TLS13_AES_128_GCM_SHA256" } }),
            ),
            (
                Observed::Findings {
                    findings: vec!["a".into()],
                },
                json!({ "findings": ["a"] }),
            ),
        ];
        for (observed, want) in cases {
            assert_eq!(serde_json::to_value(&observed).unwrap(), want);
            let back: Observed = serde_json::from_value(want.clone()).unwrap();
            assert_eq!(serde_json::to_value(&back).unwrap(), want);
        }
        let older = json!({ "something": "else" });
        let read: Observed = serde_json::from_value(older.clone()).unwrap();
        assert_eq!(read, Observed::Payload(older));
    }
}
