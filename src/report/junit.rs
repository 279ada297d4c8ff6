//! junit.xml: one testsuite per suite and endpoint, one testcase per check, and one `run/verdict`
//! testcase whose status is the run's own verdict, so a CI that reads only JUnit gates exactly as
//! the exit code does (an incomplete run, or one that judged too little, is an error there too).

use std::collections::BTreeMap;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use super::{Report, Verdict};
use crate::suite::Severity;

fn timestamp(t: time::OffsetDateTime) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond())
        .unwrap_or_default()
        .fixed_offset()
}

pub(super) fn render(report: &Report) -> String {
    let mut junit = quick_junit::Report::new("argocd-mtls-verify");
    junit.set_timestamp(timestamp(report.run.started_at));
    let new_suite = |name: String| {
        let mut suite = TestSuite::new(name);
        suite.set_timestamp(timestamp(report.run.started_at));
        suite
            .extra
            .insert("hostname".into(), report.run.host.clone().into());
        suite
    };
    let mut suites: BTreeMap<String, TestSuite> = BTreeMap::new();
    suites.insert("run".into(), {
        let mut run = new_suite("argocd-mtls-verify run".into());
        run.add_test_case(verdict_case(report));
        run
    });
    for check in &report.checks {
        let suite_name = format!("{} @ {}", check.suite, check.endpoint);
        let suite = suites
            .entry(suite_name.clone())
            .or_insert_with(|| new_suite(suite_name));
        let mut status = match (check.verdict, check.severity) {
            (Verdict::Pass, _) | (Verdict::Fail, Severity::Advisory) => TestCaseStatus::success(),
            (Verdict::Skip, _) => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(check.reason.clone());
                s
            }
            (Verdict::Fail, Severity::Required) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!(
                    "expected {}; observed: {}",
                    check.expected, check.reason
                ));
                s.set_type("requirement-violated");
                s
            }
            (Verdict::Error, _) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(format!("no verdict: {}", check.reason));
                s.set_type("inconclusive");
                s
            }
        };
        if let TestCaseStatus::NonSuccess { .. } = status {
            status.set_description(details(check));
        }
        let mut case = TestCase::new(check.id.clone(), status);
        case.set_classname(check.suite.clone());
        case.set_time(Duration::from_secs_f64(check.duration_ms.max(0.0) / 1000.0));
        case.add_property(Property::new("requirement", check.requirement.clone()));
        case.add_property(Property::new("controls", check.controls.join(" ")));
        case.add_property(Property::new(
            "severity",
            format!("{:?}", check.severity).to_lowercase(),
        ));
        match (check.verdict, check.severity) {
            (Verdict::Fail, Severity::Advisory) => {
                case.set_system_out(format!(
                    "ADVISORY (does not fail the run)\n{}",
                    details(check)
                ));
            }
            (Verdict::Pass, _) => {
                case.set_system_out(details(check));
            }
            _ => {}
        }
        suite.add_test_case(case);
    }
    junit.add_test_suites(suites.into_values());
    junit.to_string().expect("JUnit XML serializes")
}

/// The run's own verdict as a testcase: success only when the exit code is 0.
fn verdict_case(report: &Report) -> TestCase {
    let s = &report.summary;
    let counts = super::console::counts(report);
    let mut status = match s.verdict {
        Verdict::Pass => TestCaseStatus::success(),
        Verdict::Fail => {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let after = report
                .failed_steps_line()
                .map(|steps| format!("; and a step after the checks failed: {steps}"))
                .unwrap_or_default();
            st.set_message(format!(
                "FAIL: at least one required check failed ({counts}){after}"
            ));
            st.set_type("requirement-violated");
            st
        }
        _ => {
            let why = if report.run.incomplete {
                format!(
                    "the run is INCOMPLETE: {}",
                    report.run.stopped.as_deref().unwrap_or("it did not finish")
                )
            } else if let Some(steps) = report.failed_steps_line() {
                format!("a step after the checks failed: {steps}")
            } else if s.passed + s.failed == 0 {
                "no check was judged".to_owned()
            } else if s.not_judged > 0 && s.errors == 0 {
                format!(
                    "{} required checks were not judged for want of input (see their reasons; --partial accepts that)",
                    s.not_judged
                )
            } else {
                "required checks have no verdict".to_owned()
            };
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
            st.set_message(format!("NO VERDICT: {why} ({counts})"));
            st.set_type("no-verdict");
            st
        }
    };
    status.set_description(format!(
        "rule: {}\nscope: {}",
        super::GATE_RULE,
        report.run.scope.describe()
    ));
    let mut case = TestCase::new("run/verdict", status);
    case.set_classname("run");
    case.set_time(Duration::from_secs_f64(
        (report.run.finished_at - report.run.started_at)
            .as_seconds_f64()
            .max(0.0),
    ));
    if s.verdict == Verdict::Pass {
        case.set_system_out(format!(
            "PASS ({counts})\nrule: {}\nscope: {}",
            super::GATE_RULE,
            report.run.scope.describe()
        ));
    }
    case
}

fn details(check: &super::CheckResult) -> String {
    let mut out = format!(
        "action: {}\nrequirement: {}\nexpected: {}\nobserved: {}\n",
        check.action, check.requirement, check.expected, check.reason
    );
    for line in &check.evidence {
        out.push_str(&format!("evidence: {line}\n"));
    }
    out
}
