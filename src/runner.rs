//! The runner: selects checks from suites, observes every endpoint, evaluates, and then (separately)
//! reports: libtest-mimic prints the results the way `cargo test` does (filters and `--list`
//! included), and the report writers produce the files.

use std::time::Instant;

pub mod kube;

use libtest_mimic::{Arguments, Failed, Trial};

use crate::checks::{self, ProbeSettings};
use crate::pki::ProbePki;
use crate::report::{CheckResult, Phase, Report, RunInfo, Subject, Verdict};
use crate::suite::{Check, Suite};
use crate::target::Endpoint;

/// Which checks to run: libtest-style substring filters (any may match), or exact ids with `exact`.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Filters; empty selects everything.
    pub filters: Vec<String>,
    /// Match ids exactly instead of by substring.
    pub exact: bool,
    /// Checks to skip (substring).
    pub skip: Vec<String>,
}

impl Selection {
    /// Whether `id` is selected.
    pub fn matches(&self, id: &str) -> bool {
        let hit = |f: &String| {
            if self.exact {
                id == f
            } else {
                id.contains(f.as_str())
            }
        };
        (self.filters.is_empty() || self.filters.iter().any(hit))
            && !self.skip.iter().any(|s| id.contains(s.as_str()))
    }
}

/// The checks of `suites` selected by `selection`.
pub fn select(suites: &[Suite], selection: &Selection) -> Vec<Check> {
    suites
        .iter()
        .flat_map(Suite::checks)
        .filter(|c| selection.matches(&c.id))
        .collect()
}

/// Times phases.
#[derive(Debug, Default)]
pub struct PhaseClock {
    phases: Vec<Phase>,
}

impl PhaseClock {
    /// Runs `f` as phase `name`.
    pub fn time<T>(&mut self, name: &str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.record(name, start);
        out
    }

    /// Records a phase that started at `start` and ends now.
    pub fn record(&mut self, name: &str, start: Instant) {
        self.phases.push(Phase {
            name: name.to_owned(),
            ms: start.elapsed().as_secs_f64() * 1000.0,
        });
    }

    /// The phases so far.
    pub fn into_phases(self) -> Vec<Phase> {
        self.phases
    }
}

/// Observes and evaluates `checks` on every endpoint (one replica after another, each concurrent inside).
pub async fn execute(
    endpoints: &[Endpoint],
    pki: &ProbePki,
    checks: &[Check],
    settings: &ProbeSettings,
    progress: bool,
) -> (Vec<CheckResult>, Option<serde_json::Value>) {
    let mut results = Vec::new();
    let mut argocd_version = None;
    for endpoint in endpoints {
        if progress {
            eprintln!(
                "probing {} ({}) with {} checks ...",
                endpoint.label,
                endpoint.addr,
                checks.len()
            );
        }
        let obs = checks::observe(endpoint, pki, checks, settings).await;
        if progress {
            eprintln!("  observed in {:.0} ms", obs.elapsed_ms);
        }
        if argocd_version.is_none() {
            argocd_version = obs.grpc_version.clone().and_then(Result::ok);
        }
        results.extend(checks.iter().map(|c| checks::evaluate(c, &obs, endpoint)));
    }
    (results, argocd_version)
}

fn libtest_args(list: bool) -> Arguments {
    Arguments {
        list,
        test_threads: Some(1),
        // Selection already happened before execution; libtest-mimic only prints.
        ..Arguments::default()
    }
}

/// Prints results as `cargo test` would (`test handshake/wrong-ca/tls1.3 ... ok`).
pub fn print_results(results: &[CheckResult], multi_endpoint: bool) {
    let trials = results
        .iter()
        .map(|r| {
            let name = if multi_endpoint {
                format!("{} [{}]", r.id, r.endpoint)
            } else {
                r.id.clone()
            };
            let verdict = r.verdict;
            let advisory = r.severity == crate::suite::Severity::Advisory;
            let message = format!("expected {}; observed {}", r.expected, r.reason);
            Trial::test(name, move || match verdict {
                Verdict::Pass => Ok(()),
                Verdict::Fail if advisory => Ok(()),
                Verdict::Fail => Err(Failed::from(message)),
                Verdict::Error => Err(Failed::from(format!("NO VERDICT: {message}"))),
                Verdict::Skip => Ok(()),
            })
            .with_kind(r.suite.clone())
            .with_ignored_flag(verdict == Verdict::Skip)
        })
        .collect();
    let _ = libtest_mimic::run(&libtest_args(false), trials);
}

/// Prints the selected check ids, as `cargo test -- --list` does, without probing anything.
pub fn print_list(checks: &[Check]) {
    let trials = checks
        .iter()
        .map(|c| Trial::test(c.id.clone(), || Ok(())).with_kind(c.suite.clone()))
        .collect();
    let _ = libtest_mimic::run(&libtest_args(true), trials);
}

/// Builds run metadata.
pub fn run_info(
    id: String,
    target: &str,
    started_at: time::OffsetDateTime,
    phases: Vec<Phase>,
    incomplete: bool,
) -> RunInfo {
    RunInfo {
        id,
        started_at,
        finished_at: time::OffsetDateTime::now_utc(),
        harness_version: env!("CARGO_PKG_VERSION").into(),
        target: target.into(),
        phases,
        incomplete,
        stopped: None,
    }
}

/// The subject section for endpoints.
pub fn subject(endpoints: &[Endpoint], argocd_version: Option<serde_json::Value>) -> Subject {
    Subject {
        addresses: endpoints
            .iter()
            .map(|e| format!("{} ({})", e.addr, e.label))
            .collect(),
        server_name: endpoints
            .first()
            .map(|e| e.server_name.clone())
            .unwrap_or_default(),
        protocol: endpoints
            .first()
            .map(|e| format!("{:?}", e.protocol).to_lowercase())
            .unwrap_or_default(),
        argocd_version,
        kubernetes: None,
    }
}

/// Prints the one-line summary and where the report is.
pub fn print_summary(report: &Report, dir: Option<&std::path::Path>) {
    let s = &report.summary;
    let word = match s.verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        _ => "NO VERDICT",
    };
    println!(
        "verdict: {word} ({} passed, {} failed, {} skipped, {} without verdict, {} advisory)",
        s.passed, s.failed, s.skipped, s.errors, s.advisories
    );
    if let Some(dir) = dir {
        println!("report: {}", dir.display());
    }
}
