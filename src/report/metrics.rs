//! The report as Prometheus metrics in the text exposition format, for node-exporter's textfile
//! collector or any scraper of a file (`run --metrics-file PATH`). Names carry the
//! `argocd_mtls_verify_` prefix and their unit; labels are bounded (check ids, endpoints and the
//! fixed verdict words), so a series per check stays one series per check.

use std::fmt::Write;

use super::{Report, Verdict};

const VERDICTS: [Verdict; 4] = [Verdict::Pass, Verdict::Fail, Verdict::Skip, Verdict::Error];

/// The metrics text.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let kube = report.subject.kubernetes.as_ref();
    let base = format!(
        "cluster=\"{}\",namespace=\"{}\"",
        escape(kube.map(|k| k.cluster.as_str()).unwrap_or_default()),
        escape(kube.map(|k| k.namespace.as_str()).unwrap_or_default())
    );
    let s = &report.summary;
    metric(
        &mut out,
        "argocd_mtls_verify_run_verdict",
        "gauge",
        "The run's gate: 1 for the verdict it reached (pass, fail, error = no verdict), 0 for the others.",
    );
    for v in [Verdict::Pass, Verdict::Fail, Verdict::Error] {
        let _ = writeln!(
            out,
            "argocd_mtls_verify_run_verdict{{{base},verdict=\"{v}\"}} {}",
            u8::from(s.verdict == v)
        );
    }
    metric(
        &mut out,
        "argocd_mtls_verify_run_exit_code",
        "gauge",
        "The run's exit code (0 pass, 1 fail, 2 no verdict).",
    );
    let _ = writeln!(
        out,
        "argocd_mtls_verify_run_exit_code{{{base}}} {}",
        s.exit_code()
    );
    metric(
        &mut out,
        "argocd_mtls_verify_run_step_failed",
        "gauge",
        "1 for each step after the checks that failed before this file was written (by its flag); the run then has no verdict unless a required check failed.",
    );
    for step in &report.run.failed_steps {
        let _ = writeln!(
            out,
            "argocd_mtls_verify_run_step_failed{{{base},step=\"{}\"}} 1",
            step.step.flag()
        );
    }
    metric(
        &mut out,
        "argocd_mtls_verify_run_timestamp_seconds",
        "gauge",
        "When the run finished, as a Unix time.",
    );
    let _ = writeln!(
        out,
        "argocd_mtls_verify_run_timestamp_seconds{{{base}}} {}",
        report.run.finished_at.unix_timestamp()
    );
    metric(
        &mut out,
        "argocd_mtls_verify_checks",
        "gauge",
        "Checks by verdict in the run.",
    );
    for v in VERDICTS {
        let n = report.checks.iter().filter(|c| c.verdict == v).count();
        let _ = writeln!(
            out,
            "argocd_mtls_verify_checks{{{base},verdict=\"{v}\"}} {n}"
        );
    }
    metric(
        &mut out,
        "argocd_mtls_verify_check_passed",
        "gauge",
        "1 when the check passed, 0 when it failed or has no verdict (skipped checks are left out).",
    );
    for c in &report.checks {
        if c.verdict == Verdict::Skip {
            continue;
        }
        let _ = writeln!(
            out,
            "argocd_mtls_verify_check_passed{{{base},check=\"{}\",endpoint=\"{}\",severity=\"{}\"}} {}",
            escape(&c.id),
            escape(&c.endpoint),
            match c.severity {
                super::Severity::Required => "required",
                super::Severity::Advisory => "advisory",
            },
            u8::from(c.verdict == Verdict::Pass)
        );
    }
    metric(
        &mut out,
        "argocd_mtls_verify_certificate_expiry_timestamp_seconds",
        "gauge",
        "When each certificate the run saw stops being valid, as a Unix time.",
    );
    let mut seen = std::collections::BTreeSet::new();
    for cert in &report.certificates {
        if !seen.insert(cert.sha256.clone()) {
            continue;
        }
        let _ = writeln!(
            out,
            "argocd_mtls_verify_certificate_expiry_timestamp_seconds{{{base},role=\"{}\",subject=\"{}\"}} {}",
            escape(cert.role.as_deref().unwrap_or_default()),
            escape(&cert.subject),
            cert.not_after.unix_timestamp()
        );
    }
    out
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the exposition format wants it: backslash, quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Severity, test_report};

    #[test]
    fn the_gate_and_each_check_are_series_with_bounded_labels() {
        let pass = render(&test_report(
            &[
                ("a", Verdict::Pass, Severity::Required),
                ("s", Verdict::Skip, Severity::Required),
            ],
            None,
        ));
        assert!(
            pass.contains(
                "argocd_mtls_verify_run_verdict{cluster=\"\",namespace=\"\",verdict=\"pass\"} 1\n"
            ),
            "{pass}"
        );
        assert!(pass.contains("verdict=\"fail\"} 0\n"), "{pass}");
        assert!(pass.contains("argocd_mtls_verify_run_exit_code{cluster=\"\",namespace=\"\"} 0\n"));
        // The endpoint's quotes are escaped; a skipped check has no series.
        assert!(
            pass.contains(
                "check=\"a\",endpoint=\"pod/a \\\"quoted\\\"\",severity=\"required\"} 1\n"
            ),
            "{pass}"
        );
        assert!(!pass.contains("check=\"s\""), "{pass}");
        let fail = render(&test_report(
            &[("a", Verdict::Fail, Severity::Required)],
            None,
        ));
        assert!(fail.contains("verdict=\"fail\"} 1\n"), "{fail}");
        assert!(fail.contains("argocd_mtls_verify_run_exit_code{cluster=\"\",namespace=\"\"} 1\n"));
        assert!(
            fail.contains(
                "check=\"a\",endpoint=\"pod/a \\\"quoted\\\"\",severity=\"required\"} 0\n"
            ),
            "{fail}"
        );
        let none = render(&test_report(
            &[("a", Verdict::Error, Severity::Required)],
            None,
        ));
        assert!(none.contains("verdict=\"error\"} 1\n"), "{none}");
        assert!(
            none.contains("_exit_code{cluster=\"\",namespace=\"\"} 2\n"),
            "{none}"
        );
    }
}
