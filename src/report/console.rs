//! The console: the same results as report.json, report.md and junit.xml, as lines a person (or a
//! CI log) reads. Rendered from the [`Report`], so it can never tell another story than the files.

use super::{Report, Verdict};
use crate::suite::Severity;

/// How one result reads on the console.
fn status(verdict: Verdict, severity: Severity) -> &'static str {
    match (verdict, severity) {
        (Verdict::Pass, _) => "ok",
        (Verdict::Fail, Severity::Required) => "FAILED",
        (Verdict::Fail, Severity::Advisory) => "advisory: failed (does not fail the run)",
        (Verdict::Skip, _) => "skipped",
        (Verdict::Error, _) => "NO VERDICT",
    }
}

/// The verdict word of a summary.
pub fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        _ => "NO VERDICT",
    }
}

/// The summary's counts, in the words every writer uses.
pub fn counts(report: &Report) -> String {
    let s = &report.summary;
    let mut out = format!(
        "{} passed, {} failed, {} skipped, {} without verdict, {} advisory",
        s.passed, s.failed, s.skipped, s.errors, s.advisories
    );
    if s.not_judged > 0 {
        out.push_str(&format!(
            ", {} required not judged for want of input",
            s.not_judged
        ));
    }
    out
}

/// Every result, the problems in detail, then the verdict line.
pub fn render(report: &Report) -> String {
    let multi = report
        .checks
        .iter()
        .any(|c| c.endpoint != report.checks[0].endpoint);
    let name = |c: &super::CheckResult| {
        if multi {
            format!("{} [{}]", c.id, c.endpoint)
        } else {
            c.id.clone()
        }
    };
    let mut out = format!("\nrunning {} checks\n", report.checks.len());
    for c in &report.checks {
        out.push_str(&format!(
            "check {} ... {}\n",
            name(c),
            status(c.verdict, c.severity)
        ));
    }
    let problems: Vec<_> = report
        .checks
        .iter()
        .filter(|c| {
            c.verdict == Verdict::Error
                || (c.verdict == Verdict::Fail && c.severity == Severity::Required)
                || (c.verdict == Verdict::Skip
                    && c.severity == Severity::Required
                    && c.skip_kind == Some(super::SkipKind::MissingInput))
        })
        .collect();
    if !problems.is_empty() {
        out.push_str("\nproblems:\n");
        for c in problems {
            out.push_str(&format!(
                "  {} ({}):\n    expected: {}\n    observed: {}\n",
                name(c),
                status(c.verdict, c.severity),
                c.expected,
                c.reason
            ));
        }
    }
    if let Some(steps) = report.failed_steps_line() {
        out.push_str(&format!("\nFAILED AFTER THE CHECKS: {steps}\n"));
    }
    if report.run.incomplete {
        out.push_str(&format!(
            "\nINCOMPLETE: {}\n",
            report
                .run
                .stopped
                .as_deref()
                .unwrap_or("the run did not finish")
        ));
        if !report.run.not_judged.is_empty() {
            out.push_str(&format!(
                "not judged ({}): {}\n",
                report.run.not_judged.len(),
                report.run.not_judged.join(", ")
            ));
        }
    }
    if report.run.scope.narrowed() {
        out.push_str(&format!("scope: {}\n", report.run.scope.describe()));
    }
    let elapsed = (report.run.finished_at - report.run.started_at).as_seconds_f64();
    out.push_str(&format!(
        "\nverdict: {} ({}); finished in {elapsed:.2}s\n",
        verdict_word(report.summary.verdict),
        counts(report)
    ));
    out
}

/// Writes to standard output and never panics: when the reader went away (`| head -1`), the rest
/// of the output is dropped, and the run still writes its report and exits with its verdict.
pub fn print(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
