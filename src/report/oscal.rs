//! `oscal-assessment-results.json`: the report as NIST OSCAL 1.1.2 Assessment Results, for tools
//! that ingest OSCAL (FedRAMP-style reviews). One observation per check (method `TEST`, with
//! report.json and its SHA-256 as the relevant evidence), one finding per control with the status
//! decided by the catalogue's rule: `supported` is `satisfied`; every other status is
//! `not-satisfied`, with this project's status word and its basis kept in the finding. The same
//! [`Report`]: nothing here is judged again.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{ControlStatus, Report};

/// The OSCAL version written.
pub const OSCAL_VERSION: &str = "1.1.2";

/// Namespace of this project's OSCAL properties.
const NS: &str = "https://github.com/argocd-mtls-verify/argocd-mtls-verify/ns/oscal";

/// A UUID that is the same for the same run and name (OSCAL wants UUIDs; deterministic ones keep
/// two exports of one report equal).
fn uuid(run: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{run}\0{name}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// An OSCAL token for a control id (`HIPAA-164.312(a)(1)` -> `hipaa-164.312_a_1`): letters,
/// digits, `.`, `-` and `_` only.
pub fn control_token(id: &str) -> String {
    let mut out = String::new();
    for c in id.to_lowercase().chars() {
        match c {
            'a'..='z' | '0'..='9' | '.' | '-' => out.push(c),
            _ if !out.ends_with('_') => out.push('_'),
            _ => {}
        }
    }
    out.trim_end_matches('_').to_owned()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The export, for a report whose report.json has the SHA-256 `json_sha256`.
pub fn render(r: &Report, json_sha256: &str) -> String {
    let run = &r.run.id;
    let collected = rfc3339(r.run.finished_at);
    let evidence = json!([{
        "href": "report.json",
        "description": format!("report.json of run {run}, SHA-256 {json_sha256}"),
        "props": [{"name": "sha256", "ns": NS, "value": json_sha256}],
    }]);
    let observations: Vec<Value> = r
        .checks
        .iter()
        .map(|c| {
            json!({
                "uuid": uuid(run, &format!("observation {} {}", c.id, c.endpoint)),
                "title": format!("{} [{}]", c.id, c.endpoint),
                "description": c.title,
                "props": [
                    {"name": "verdict", "ns": NS, "value": super::verdict_word(c.verdict, c.severity)},
                    {"name": "severity", "ns": NS, "value": match c.severity {
                        crate::suite::Severity::Required => "required",
                        crate::suite::Severity::Advisory => "advisory",
                    }},
                ],
                "methods": ["TEST"],
                "relevant-evidence": evidence,
                "collected": collected,
                "remarks": format!("Expected: {}. Observed: {}", c.expected, c.reason),
            })
        })
        .collect();
    let findings: Vec<Value> = r
        .controls
        .iter()
        .map(|c| {
            let related: Vec<Value> = r
                .checks
                .iter()
                .filter(|k| k.controls.contains(&c.control.id))
                .map(|k| {
                    json!({"observation-uuid": uuid(run, &format!("observation {} {}", k.id, k.endpoint))})
                })
                .collect();
            let state = if c.status == ControlStatus::Supported {
                "satisfied"
            } else {
                "not-satisfied"
            };
            let remarks = c.reasons().join("; ");
            let mut finding = json!({
                "uuid": uuid(run, &format!("finding {}", c.control.id)),
                "title": format!("{} {}", c.control.framework, c.control.title),
                "description": format!("{} ({})", c.control.statement, c.control.clause),
                "props": [{"name": "assessment-status", "ns": NS, "value": c.status.word()}],
                "target": {
                    "type": "objective-id",
                    "target-id": control_token(&c.control.id),
                    "status": {"state": state},
                },
                "remarks": remarks,
            });
            if !related.is_empty() {
                finding["related-observations"] = Value::Array(related);
            }
            finding
        })
        .collect();
    let reviewed: Vec<Value> = r
        .controls
        .iter()
        .map(|c| json!({"control-id": control_token(&c.control.id)}))
        .collect();
    let mut result = json!({
        "uuid": uuid(run, "result"),
        "title": format!("argocd-mtls-verify run {run}"),
        "description": format!("{} ({} target). {}", r.overall(), r.run.target, super::console::counts(r)),
        "start": rfc3339(r.run.started_at),
        "end": collected,
        "reviewed-controls": {"control-selections": [{"include-controls": reviewed}]},
        "observations": observations,
        "findings": findings,
    });
    // OSCAL arrays may not be empty.
    for key in ["observations", "findings"] {
        if result[key].as_array().is_some_and(Vec::is_empty)
            && let Some(o) = result.as_object_mut()
        {
            o.remove(key);
        }
    }
    let doc = json!({
        "assessment-results": {
            "uuid": uuid(run, "assessment-results"),
            "metadata": {
                "title": format!("Argo CD repo-server mTLS verification, run {run}"),
                "last-modified": collected,
                "version": r.run.harness_version,
                "oscal-version": OSCAL_VERSION,
            },
            "import-ap": {"href": "report.json"},
            "results": [result],
        }
    });
    serde_json::to_string_pretty(&doc).expect("JSON values serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_ids_become_tokens_and_uuids_are_stable() {
        assert_eq!(control_token("HIPAA-164.312(a)(1)"), "hipaa-164.312_a_1");
        assert_eq!(control_token("NIST-800-53-IA-5(2)"), "nist-800-53-ia-5_2");
        assert_eq!(control_token("SOC2-CC6.1"), "soc2-cc6.1");
        assert_eq!(uuid("r", "x"), uuid("r", "x"));
        assert_ne!(uuid("r", "x"), uuid("r", "y"));
        assert_eq!(uuid("r", "x").len(), 36);
    }
}
