//! report.md: what an auditor reads. Summary first, then every check with expected vs observed,
//! the certificates, and the control mapping.

use super::{ControlStatus, KubeFacts, Report};
use crate::suite::Severity;

use super::verdict_word;

/// Escapes a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub(super) fn render(r: &Report) -> String {
    let mut md = String::new();
    let overall = r.overall();
    let ts = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    md.push_str("# Argo CD repo-server mTLS verification report\n\n");
    md.push_str(&format!("**Result: {overall}.**\n\n"));
    md.push_str("| | |\n|---|---|\n");
    md.push_str(&format!("| Run | `{}` ({}) |\n", r.run.id, r.run.target));
    md.push_str(&format!(
        "| Started / finished | {} / {} |\n",
        ts(r.run.started_at),
        ts(r.run.finished_at)
    ));
    md.push_str(&format!(
        "| Harness | argocd-mtls-verify {} (source commit `{}`) |\n",
        r.run.harness_version, r.run.source_commit
    ));
    md.push_str(&format!(
        "| Host | `{}`, {} |\n",
        cell(&r.run.host),
        cell(&r.run.os)
    ));
    if !r.run.scope.command.is_empty() {
        md.push_str(&format!(
            "| Command | `argocd-mtls-verify {}` |\n",
            cell(&r.run.scope.command.join(" ")).replace('`', "'")
        ));
    }
    if !r.run.scope.suites.is_empty() {
        md.push_str(&format!(
            "| Suites | {} |\n",
            cell(&r.run.scope.suites.join(", "))
        ));
    }
    md.push_str(&format!("| Scope | {} |\n", cell(&r.run.scope.describe())));
    md.push_str(&format!("| Gate rule | {} |\n", cell(super::GATE_RULE)));
    md.push_str(&format!(
        "| Endpoints | {} |\n",
        cell(&r.subject.addresses.join(", "))
    ));
    md.push_str(&format!(
        "| Server name / protocol | `{}` / {} |\n",
        r.subject.server_name, r.subject.protocol
    ));
    match (&r.subject.argocd_version, &r.subject.argocd_version_unknown) {
        (Some(v), _) => {
            let version = v.get("version").and_then(|x| x.as_str()).unwrap_or("?");
            md.push_str(&format!(
                "| Argo CD build (VersionService) | `{}` |\n",
                cell(version)
            ));
        }
        (None, Some(why)) => md.push_str(&format!("| Argo CD build | {} |\n", cell(why))),
        (None, None) => {}
    }
    if let Some(k) = &r.subject.kubernetes {
        md.push_str(&format!(
            "| Kubernetes | {} (API server {}), namespace `{}` |\n",
            cell(&k.cluster),
            cell(&k.server_version),
            cell(&k.namespace)
        ));
    }
    md.push_str(&format!("| Checks | {} |\n", super::console::counts(r)));
    if let Some(steps) = r.failed_steps_line() {
        md.push_str(&format!(
            "| After the checks | **FAILED**: {} |\n",
            cell(&steps)
        ));
    }
    if r.run.incomplete {
        md.push_str(&format!(
            "| Completeness | **INCOMPLETE**: {} |\n",
            cell(
                r.run
                    .stopped
                    .as_deref()
                    .unwrap_or("the run was interrupted or a phase did not finish")
            )
        ));
        if !r.run.not_judged.is_empty() {
            md.push_str(&format!(
                "| Not judged | {} |\n",
                cell(
                    &r.run
                        .not_judged
                        .iter()
                        .map(|id| format!("`{id}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            ));
        }
    }
    md.push_str("\nA passing check is evidence toward the mapped controls, not a certification of them.\n\n");
    if let Some(k) = &r.subject.kubernetes {
        kubernetes_section(&mut md, k);
    }

    // One endpoint (the Endpoints row above names it): no column, no "at" that repeats it.
    let single = r
        .checks
        .first()
        .filter(|first| r.checks.iter().all(|c| c.endpoint == first.endpoint))
        .is_some();
    let at = |endpoint: &str| {
        if single {
            String::new()
        } else {
            format!(" at {endpoint}")
        }
    };
    if single {
        md.push_str("## Checks\n\n| Check | Verdict | Observed |\n|---|---|---|\n");
    } else {
        md.push_str("## Checks\n\n| Check | Endpoint | Verdict | Observed |\n|---|---|---|---|\n");
    }
    for c in &r.checks {
        let endpoint = if single {
            String::new()
        } else {
            format!(" {} |", cell(&c.endpoint))
        };
        md.push_str(&format!(
            "| `{}` |{endpoint} **{}** | {} |\n",
            c.id,
            verdict_word(c.verdict, c.severity),
            cell(&c.reason)
        ));
    }

    let coverage = r.door_coverage();
    if !coverage.is_empty() {
        md.push_str("\n## Doors covered\n\nThe cheapest refusal (no certificate) was tried at every door of `suites/doors.toml`; every other refusal at its base doors and one door of each behaviour found elsewhere.\n\n");
        if single {
            md.push_str("| TLS | Dimension | Tried | Behaviours | Unlike the front door |\n|---|---|---|---|---|\n");
        } else {
            md.push_str("| Endpoint | TLS | Dimension | Tried | Behaviours | Unlike the front door |\n|---|---|---|---|---|---|\n");
        }
        for (endpoint, version, rows) in coverage {
            for row in rows {
                let endpoint = if single {
                    String::new()
                } else {
                    format!(" {} |", cell(endpoint))
                };
                md.push_str(&format!(
                    "|{endpoint} {version} | {} | {} | {} | {} |\n",
                    row.dimension,
                    row.variants,
                    row.behaviours,
                    cell(&row.words())
                ));
            }
        }
    }

    // One section per case: what it does and expects once, then each check's verdict and its
    // evidence (door classes once each; the individual doors are in report.json).
    md.push_str("\n## Details\n\n");
    let mut cases: Vec<(&str, Vec<&super::CheckResult>)> = Vec::new();
    for c in &r.checks {
        match cases.iter_mut().find(|(case, _)| *case == c.case) {
            Some((_, checks)) => checks.push(c),
            None => cases.push((&c.case, vec![c])),
        }
    }
    for (case, checks) in cases {
        let first = checks[0];
        md.push_str(&format!("### `{case}` — {}\n\n", first.title));
        md.push_str(&format!("- **Action:** {}\n", first.action));
        md.push_str(&format!("- **Requirement:** {}\n", first.requirement));
        if !first.spec.is_empty() {
            md.push_str(&format!("- **Spec:** {}\n", first.spec));
        }
        // The controls a case maps to are in the Control mapping, by case.
        md.push_str(&format!("- **Expected:** {}\n", first.expected));
        for c in checks {
            let severity = match c.severity {
                Severity::Required => "",
                Severity::Advisory => " (advisory)",
            };
            md.push_str(&format!(
                "- `{}`{}: **{}**{severity}",
                c.id,
                at(&c.endpoint),
                verdict_word(c.verdict, c.severity)
            ));
            // A pass reads in the Checks table; anything else is repeated where it is explained.
            if c.verdict != super::Verdict::Pass {
                md.push_str(&format!(" — {}", c.reason));
            }
            md.push('\n');
            // A skip's reason says why; what was seen on the way is in report.json.
            if c.verdict == super::Verdict::Skip {
                continue;
            }
            for e in &c.evidence {
                md.push_str(&format!("  - {e}\n"));
            }
        }
        md.push('\n');
    }

    md.push_str("## Certificates\n\n| Role | Source | Subject | Issuer | SANs | Serial | SHA-256 | Valid from | Valid until | Key | EKU |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for c in &r.certificates {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | `{}` | `{}` | {} | {} ({} days) | {} | {} |\n",
            cell(c.role.as_deref().unwrap_or("")),
            cell(c.source.as_deref().unwrap_or("")),
            cell(&c.subject),
            cell(&c.issuer),
            cell(&c.san.join(", ")),
            c.serial,
            c.sha256,
            ts(c.not_before),
            ts(c.not_after),
            c.days_left,
            c.key,
            cell(&c.eku.join(", "))
        ));
    }

    md.push_str("\n## Control mapping\n\nStatus words:\n\n");
    for status in ControlStatus::ALL {
        md.push_str(&format!("- **{}**: {}\n", status.word(), status.meaning()));
    }
    md.push_str(
        "\nA status follows from the checks mapped to the control and its stated gaps (reports/controls.toml says how). A case named without TLS versions is checked under TLS 1.2 and TLS 1.3.\n\n| Control | Clause | What this run can show | Status | Why | Checks |\n|---|---|---|---|---|---|\n",
    );
    for c in &r.controls {
        let why = c.reasons().join("; ");
        md.push_str(&format!(
            "| {} ({}) | {} | {} | **{}** | {} | {} |\n",
            c.control.id,
            cell(&c.control.framework),
            cell(&c.control.clause),
            cell(&c.control.statement),
            c.status,
            cell(&why),
            cell(&by_case(&c.checks))
        ));
    }
    md.push_str("\n## Phases\n\n| Phase | ms |\n|---|---|\n");
    for p in &r.run.phases {
        md.push_str(&format!("| {} | {:.1} |\n", p.name, p.ms));
    }
    md.push_str(
        "\nIntegrity: `sha256sum -c report.json.sha256` in this folder checks report.json.\n",
    );
    md
}

/// Check ids with their TLS versions folded into their case: `handshake/wrong-ca,
/// tls/versions (tls1.0, tls1.1), server/identity`; a case under both versions the engine
/// speaks is named alone.
fn by_case(ids: &[String]) -> String {
    let mut cases: Vec<(&str, Vec<&str>)> = Vec::new();
    for id in ids {
        let (case, version) = match id.rsplit_once('/') {
            Some((case, v)) if v.starts_with("tls1.") => (case, Some(v)),
            _ => (id.as_str(), None),
        };
        match cases.iter_mut().find(|(c, _)| *c == case) {
            Some((_, versions)) => versions.extend(version),
            None => cases.push((case, version.into_iter().collect())),
        }
    }
    cases
        .iter()
        .map(|(case, versions)| match versions.as_slice() {
            [] | ["tls1.2", "tls1.3"] => (*case).to_owned(),
            vs => format!("{case} ({})", vs.join(", ")),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn kubernetes_section(md: &mut String, k: &KubeFacts) {
    md.push_str(
        "## Kubernetes\n\n| Repo-server pod | Ready | Restarts | Images |\n|---|---|---|---|\n",
    );
    for pod in &k.repo_server_pods {
        md.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            cell(&pod.name),
            pod.ready,
            pod.restarts,
            cell(&pod.image_ids.join(", "))
        ));
    }
    let list = |md: &mut String, title: &str, items: Vec<String>| {
        if !items.is_empty() {
            md.push_str(&format!("\n**{title}**\n\n"));
            for i in items {
                md.push_str(&format!("- {i}\n"));
            }
        }
    };
    list(
        md,
        "Workloads mounting argocd-repo-server-mtls*",
        k.mtls_workloads
            .iter()
            .map(|w| format!("{}/{}", w.kind, w.name))
            .collect(),
    );
    list(md, "Changes the harness made", k.changes.clone());
    list(
        md,
        "Provenance",
        k.provenance
            .iter()
            .map(|(key, v)| format!("{key}: `{v}`"))
            .collect(),
    );
    md.push('\n');
}
