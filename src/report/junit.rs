//! junit.xml: one testsuite per suite and endpoint, one testcase per check.

use std::collections::BTreeMap;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use super::{Report, Verdict};
use crate::suite::Severity;

pub(super) fn render(report: &Report) -> String {
    let mut junit = quick_junit::Report::new("argocd-mtls-verify");
    let mut suites: BTreeMap<String, TestSuite> = BTreeMap::new();
    for check in &report.checks {
        let suite_name = format!("{} @ {}", check.suite, check.endpoint);
        let suite = suites
            .entry(suite_name.clone())
            .or_insert_with(|| TestSuite::new(suite_name));
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
        if check.verdict == Verdict::Fail && check.severity == Severity::Advisory {
            case.set_system_out(format!(
                "ADVISORY (does not fail the run): {}",
                check.reason
            ));
        }
        suite.add_test_case(case);
    }
    junit.add_test_suites(suites.into_values());
    junit.to_string().expect("JUnit XML serializes")
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
