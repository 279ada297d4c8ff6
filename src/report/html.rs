//! report.html: the same [`Report`] as report.md, to look at rather than read: a verdict matrix per
//! endpoint (case x TLS version, one chip per attempt coloured by its outcome, the alert in it),
//! the control table with its status legend, the certificates, and for cluster runs a view per
//! replica and per component. Self-contained (inline CSS, no script, no external asset), so it
//! opens offline and prints to PDF; it tells no other story than report.json.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{CheckResult, ControlStatus, Observed, Report, Verdict, verdict_word};
use crate::probe::{Outcome, ProbeOutcome};

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#111}
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0;max-width:100%}td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left;overflow-wrap:anywhere}
th{background:#f3f3f3}td:first-child,th{overflow-wrap:normal}
.v{font-weight:bold;padding:1px 5px;border-radius:3px;white-space:nowrap}
.PASS{background:#c8e6c9}.FAIL{background:#ef9a9a}.ADVISORY{background:#ffe082}.SKIP{background:#e0e0e0}.NO-VERDICT{background:#ce93d8}
.supported{background:#c8e6c9}.partial{background:#fff59d}.contradicted{background:#ef9a9a}.not-applicable{background:#e0e0e0}.not-assessed{background:#e0e0e0}
.chip{display:inline-block;margin:1px;padding:0 4px;border-radius:3px;font-size:11px;border:1px solid #999}
.rejected{background:#a5d6a7}.accepted{background:#90caf9}.inconclusive{background:#ce93d8}.error{background:#bdbdbd}
.matrix td{min-width:14em}
@media print{body{margin:0}h2{page-break-after:avoid}table{page-break-inside:auto}}
";

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A verdict badge; its class is the word (a space becomes a dash).
fn badge(c: &CheckResult) -> String {
    let word = verdict_word(c.verdict, c.severity);
    format!("<span class=\"v {}\">{word}</span>", word.replace(' ', "-"))
}

fn row(html: &mut String, cells: &[String]) {
    html.push_str("<tr>");
    for c in cells {
        let _ = write!(html, "<td>{c}</td>");
    }
    html.push_str("</tr>\n");
}

fn header(html: &mut String, cells: &[&str]) {
    html.push_str("<tr>");
    for c in cells {
        let _ = write!(html, "<th>{}</th>", esc(c));
    }
    html.push_str("</tr>\n");
}

/// One chip per door class (or attempt): its outcome as the colour, the alert (or reset) as the
/// text with the number of doors, the version and the doors in the tooltip.
fn chips(observed: &Observed) -> String {
    let classes: Vec<(&ProbeOutcome, Vec<String>)> = match observed {
        Observed::Doors { door_classes, .. } => door_classes
            .iter()
            .map(|c| (&c.attempt, c.doors.clone()))
            .collect(),
        Observed::Attempts { attempts } => {
            attempts.iter().map(|a| (a, vec![a.door_words()])).collect()
        }
        Observed::Admission { attempt, .. } | Observed::Attempt { attempt } => {
            vec![(attempt, vec![attempt.door_words()])]
        }
        _ => vec![],
    };
    let mut out = String::new();
    for (a, doors) in classes {
        let (class, text) = match a.outcome {
            Outcome::Accepted => ("accepted", "accepted".to_owned()),
            Outcome::Rejected => (
                "rejected",
                a.alert.map_or_else(
                    || if a.reset { "reset" } else { "refused" }.to_owned(),
                    |a| a.to_string(),
                ),
            ),
            Outcome::Inconclusive => ("inconclusive", "inconclusive".to_owned()),
            Outcome::Error => ("error", "error".to_owned()),
        };
        let (text, tip) = match doors.as_slice() {
            [one] => (text, format!("{}, {one}", a.requested_version)),
            _ => (
                format!("{text} ×{}", doors.len()),
                format!(
                    "{} at {} doors: {}",
                    a.requested_version,
                    doors.len(),
                    doors.join("; ")
                ),
            ),
        };
        let _ = write!(
            out,
            "<span class=\"chip {class}\" title=\"{}\">{}</span>",
            esc(&tip),
            esc(&text)
        );
    }
    out
}

/// The case a result belongs to and the column it goes in (`tls1.2`, `tls1.3`, or `-`).
fn case_and_column(c: &CheckResult) -> (String, &'static str) {
    for (suffix, column) in [("/tls1.2", "tls1.2"), ("/tls1.3", "tls1.3")] {
        if let Some(case) = c.id.strip_suffix(suffix) {
            return (case.to_owned(), column);
        }
    }
    (c.id.clone(), "-")
}

fn matrix(html: &mut String, endpoint: &str, results: &[&CheckResult]) {
    let _ = writeln!(html, "<h3>{}</h3>", esc(endpoint));
    let mut order: Vec<String> = Vec::new();
    let mut cells: BTreeMap<(String, &str), &CheckResult> = BTreeMap::new();
    for c in results {
        let (case, column) = case_and_column(c);
        if !order.contains(&case) {
            order.push(case.clone());
        }
        cells.insert((case, column), c);
    }
    html.push_str("<table class=\"matrix\">\n");
    header(html, &["Case", "TLS 1.2", "TLS 1.3", "No TLS version"]);
    for case in order {
        let mut row_cells = vec![format!("<code>{}</code>", esc(&case))];
        for column in ["tls1.2", "tls1.3", "-"] {
            row_cells.push(match cells.get(&(case.clone(), column)) {
                Some(c) => format!("{} {}", badge(c), chips(&c.observed)),
                None => String::new(),
            });
        }
        row(html, &row_cells);
    }
    html.push_str("</table>\n");
}

fn run_table(html: &mut String, r: &Report) {
    let ts = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let mut rows: Vec<(&str, String)> = vec![
        ("Run", format!("{} ({})", r.run.id, r.run.target)),
        (
            "Started / finished",
            format!("{} / {}", ts(r.run.started_at), ts(r.run.finished_at)),
        ),
        (
            "Harness",
            format!(
                "argocd-mtls-verify {} (source commit {})",
                r.run.harness_version, r.run.source_commit
            ),
        ),
        ("Host", format!("{}, {}", r.run.host, r.run.os)),
    ];
    if !r.run.scope.command.is_empty() {
        rows.push((
            "Command",
            format!("argocd-mtls-verify {}", r.run.scope.command.join(" ")),
        ));
    }
    if !r.run.scope.suites.is_empty() {
        rows.push(("Suites", r.run.scope.suites.join(", ")));
    }
    rows.push(("Scope", r.run.scope.describe()));
    rows.push(("Endpoints", r.subject.addresses.join(", ")));
    rows.push((
        "Server name / protocol",
        format!("{} / {}", r.subject.server_name, r.subject.protocol),
    ));
    if let Some(k) = &r.subject.kubernetes {
        rows.push((
            "Kubernetes",
            format!(
                "{} (API server {}), namespace {}",
                k.cluster, k.server_version, k.namespace
            ),
        ));
    }
    rows.push(("Checks", super::console::counts(r)));
    if let Some(steps) = r.failed_steps_line() {
        rows.push(("After the checks", format!("FAILED: {steps}")));
    }
    if r.run.incomplete {
        rows.push((
            "Completeness",
            format!(
                "INCOMPLETE: {}",
                r.run
                    .stopped
                    .as_deref()
                    .unwrap_or("the run was interrupted or a phase did not finish")
            ),
        ));
        if !r.run.not_judged.is_empty() {
            rows.push(("Not judged", r.run.not_judged.join(", ")));
        }
    }
    html.push_str("<table>\n");
    for (k, v) in rows {
        row(html, &[format!("<b>{}</b>", esc(k)), esc(&v)]);
    }
    html.push_str("</table>\n");
}

fn controls(html: &mut String, r: &Report) {
    html.push_str("<h2 id=\"controls\">Control mapping</h2>\n<ul>\n");
    for status in ControlStatus::ALL {
        let _ = writeln!(
            html,
            "<li><span class=\"v {}\">{}</span> {}</li>",
            status.word().replace(' ', "-"),
            status.word(),
            esc(status.meaning())
        );
    }
    html.push_str("</ul>\n<table>\n");
    header(
        html,
        &[
            "Control",
            "Clause",
            "What this run can show",
            "Status",
            "Why",
            "Checks",
        ],
    );
    for c in &r.controls {
        let why: Vec<String> = c.reasons().iter().map(|r| esc(r)).collect();
        row(
            html,
            &[
                format!(
                    "<b>{}</b><br>{}",
                    esc(&c.control.id),
                    esc(&c.control.framework)
                ),
                esc(&c.control.clause),
                esc(&c.control.statement),
                format!(
                    "<span class=\"v {}\">{}</span>",
                    c.status.word().replace(' ', "-"),
                    c.status
                ),
                why.join("<br>"),
                esc(&c.checks.join(", ")),
            ],
        );
    }
    html.push_str("</table>\n");
}

fn certificates(html: &mut String, r: &Report) {
    html.push_str("<h2 id=\"certificates\">Certificates</h2>\n<table>\n");
    header(
        html,
        &[
            "Role",
            "Source",
            "Subject",
            "Issuer",
            "SANs",
            "SHA-256",
            "Valid until",
            "Key",
        ],
    );
    for c in &r.certificates {
        row(
            html,
            &[
                esc(c.role.as_deref().unwrap_or("")),
                esc(c.source.as_deref().unwrap_or("")),
                esc(&c.subject),
                esc(&c.issuer),
                esc(&c.san.join(", ")),
                format!("<code>{}</code>", esc(&c.sha256)),
                format!(
                    "{} ({} days)",
                    esc(&c
                        .not_after
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()),
                    c.days_left
                ),
                esc(&c.key.to_string()),
            ],
        );
    }
    html.push_str("</table>\n");
}

/// Cluster runs: the namespace's per-component results (`<case>/<component>`) as a grid.
fn components(html: &mut String, r: &Report) {
    let Some(k) = &r.subject.kubernetes else {
        return;
    };
    let scope = format!("namespace/{}", k.namespace);
    let mut columns: Vec<String> = Vec::new();
    let mut grid: BTreeMap<String, BTreeMap<String, &CheckResult>> = BTreeMap::new();
    for c in r.checks.iter().filter(|c| c.endpoint == scope) {
        if let Some(component) =
            c.id.strip_prefix(&c.case)
                .and_then(|rest| rest.strip_prefix('/'))
                .filter(|s| !s.is_empty())
        {
            if !columns.iter().any(|x| x == component) {
                columns.push(component.to_owned());
            }
            grid.entry(c.case.clone())
                .or_default()
                .insert(component.to_owned(), c);
        }
    }
    if grid.is_empty() {
        return;
    }
    columns.sort();
    html.push_str("<h2 id=\"components\">Per component</h2>\n<table>\n");
    let mut head = vec!["Case"];
    head.extend(columns.iter().map(String::as_str));
    header(html, &head);
    for (case, by_component) in grid {
        let mut cells = vec![format!("<code>{}</code>", esc(&case))];
        for column in &columns {
            cells.push(
                by_component
                    .get(column)
                    .map(|c| badge(c))
                    .unwrap_or_default(),
            );
        }
        row(html, &cells);
    }
    html.push_str("</table>\n");
}

/// Per endpoint and TLS version, what the identity tried at every door covered.
fn doors_covered(html: &mut String, r: &Report) {
    let coverage = r.door_coverage();
    if coverage.is_empty() {
        return;
    }
    html.push_str("<h2 id=\"doors\">Doors covered</h2>\n<p>The cheapest refusal (no certificate) was tried at every door of <code>suites/doors.toml</code>; every other refusal at its base doors and one door of each behaviour found elsewhere.</p>\n<table>\n");
    header(
        html,
        &[
            "Endpoint",
            "TLS",
            "Dimension",
            "Tried",
            "Behaviours",
            "Unlike the front door",
        ],
    );
    for (endpoint, version, rows) in coverage {
        for c in rows {
            row(
                html,
                &[
                    esc(endpoint),
                    esc(version),
                    esc(&c.dimension),
                    c.variants.to_string(),
                    c.behaviours.to_string(),
                    esc(&c.words()),
                ],
            );
        }
    }
    html.push_str("</table>\n");
}

/// Cluster runs: each replica's tally and pod facts.
fn replicas(html: &mut String, r: &Report) {
    let Some(k) = &r.subject.kubernetes else {
        return;
    };
    if k.repo_server_pods.is_empty() {
        return;
    }
    html.push_str("<h2 id=\"replicas\">Per replica</h2>\n<table>\n");
    header(
        html,
        &["Pod", "Ready", "Restarts", "Passed", "Failed", "No verdict"],
    );
    for pod in &k.repo_server_pods {
        let mine: Vec<&CheckResult> = r.checks.iter().filter(|c| c.endpoint == pod.name).collect();
        let count = |v: Verdict| mine.iter().filter(|c| c.verdict == v).count().to_string();
        row(
            html,
            &[
                esc(&pod.name),
                pod.ready.to_string(),
                pod.restarts.to_string(),
                count(Verdict::Pass),
                count(Verdict::Fail),
                count(Verdict::Error),
            ],
        );
    }
    html.push_str("</table>\n");
}

pub(super) fn render(r: &Report) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>argocd-mtls-verify {}</title><style>{STYLE}</style></head><body>\n",
        esc(&r.run.id)
    );
    html.push_str("<h1>Argo CD repo-server mTLS verification report</h1>\n");
    let _ = writeln!(
        html,
        "<p id=\"result\"><b>Result: {}.</b></p>",
        esc(r.overall())
    );
    run_table(&mut html, r);
    html.push_str(
        "<p>A passing check is evidence toward the mapped controls, not a certification of them.</p>\n",
    );

    html.push_str("<h2 id=\"matrix\">Verdict matrix</h2>\n<p>One row per case, one column per TLS version; each chip is a door class, the doors (SNI and ALPN offer) whose attempts ended the same way (×N: how many; hover for which), coloured by what the server did: <span class=\"chip rejected\">refused</span> <span class=\"chip accepted\">accepted</span> <span class=\"chip inconclusive\">inconclusive</span>, the alert in it.</p>\n");
    let mut endpoints: Vec<&str> = Vec::new();
    for c in &r.checks {
        if !c.endpoint.starts_with("namespace/") && !endpoints.contains(&c.endpoint.as_str()) {
            endpoints.push(&c.endpoint);
        }
    }
    for endpoint in endpoints {
        let results: Vec<&CheckResult> =
            r.checks.iter().filter(|c| c.endpoint == endpoint).collect();
        matrix(&mut html, endpoint, &results);
    }
    doors_covered(&mut html, r);
    replicas(&mut html, r);
    components(&mut html, r);
    controls(&mut html, r);
    certificates(&mut html, r);

    html.push_str("<h2 id=\"checks\">Checks</h2>\n<table id=\"checks-table\">\n");
    header(
        &mut html,
        &["Check", "Endpoint", "Verdict", "Expected", "Observed"],
    );
    for c in &r.checks {
        row(
            &mut html,
            &[
                format!("<code>{}</code>", esc(&c.id)),
                esc(&c.endpoint),
                badge(c),
                esc(&c.expected),
                esc(&c.reason),
            ],
        );
    }
    html.push_str("</table>\n<h2>Phases</h2>\n<table>\n");
    header(&mut html, &["Phase", "ms"]);
    for p in &r.run.phases {
        row(&mut html, &[esc(&p.name), format!("{:.1}", p.ms)]);
    }
    html.push_str("</table>\n</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::DoorClass;

    #[test]
    fn text_is_escaped_and_chips_carry_the_alert() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let mut refused = ProbeOutcome::blank(crate::probe::TlsVersion::Tls13, None);
        refused.sni = Some("<evil>".into());
        refused.outcome = Outcome::Rejected;
        refused.alert = Some(crate::probe::Alert::CERTIFICATE_REQUIRED);
        let chips = chips(&Observed::Attempts {
            attempts: vec![refused.clone()],
        });
        assert!(chips.contains("class=\"chip rejected\""), "{chips}");
        assert!(chips.contains(">certificate_required<"), "{chips}");
        assert!(chips.contains("SNI `&lt;evil&gt;`"), "{chips}");
        // A door class is one chip: its count in the text, its doors in the tooltip.
        let doors = vec![
            "SNI `a`, ALPN `h2`".to_owned(),
            "no SNI, ALPN `h2`".to_owned(),
        ];
        let class = super::chips(&Observed::Doors {
            door_classes: vec![DoorClass {
                doors,
                attempt: refused,
            }],
            coverage: vec![],
        });
        assert_eq!(class.matches("class=\"chip").count(), 1, "{class}");
        assert!(class.contains(">certificate_required ×2<"), "{class}");
        assert!(
            class.contains("tls1.3 at 2 doors: SNI `a`, ALPN `h2`; no SNI, ALPN `h2`"),
            "{class}"
        );
    }
}
