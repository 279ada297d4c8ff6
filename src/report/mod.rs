//! The report: one serde model, written as report.json (+ .sha256), junit.xml and report.md into a
//! fresh folder per run. The model is the contract in DESIGN.md; its JSON Schema lives in
//! reports/schema/report.schema.json.
//!
//! Over 500 lines on purpose: the report model, its summary and gate rule, and the table test of
//! that rule are one contract (DESIGN.md); the writers live in their own files.

pub mod console;
pub mod diff;
pub mod events;
pub mod fleet;
mod html;
mod junit;
mod kube;
mod markdown;
pub mod metrics;
mod observed;
pub mod oscal;
pub mod policyreport;
pub mod progress;
mod write;

pub use kube::{KubeFacts, PodFacts, WorkloadFacts};
pub use observed::{Coverage, DoorClass, HealthSeen, Observed, PolicyLine};
pub use write::{Formats, new_run_id, write};

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::controls::Control;
use crate::suite::Severity;
use crate::x509::CertFacts;

/// Schema version of report.json.
pub const SCHEMA_VERSION: &str = "1";

/// Every report.json schema version this build reads: every one a release of this tool wrote.
pub const READABLE_SCHEMA_VERSIONS: &[&str] = &["1"];

/// Why a report.json's schema is not one this build reads.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SchemaError {
    /// No `schema_version` at all: not a report.json of this tool.
    #[error("it has no schema_version: not an argocd-mtls-verify report.json")]
    Missing,
    /// A version this build does not know (a newer tool's, or not a version at all).
    #[error(
        "its schema_version is {found}, and this argocd-mtls-verify reads schema version {}: read it with the release that wrote it",
        READABLE_SCHEMA_VERSIONS.join(", ")
    )]
    Unreadable {
        /// The value found, as JSON (`"2"`, `1`, ...).
        found: String,
    },
}

/// Whether `version` (a report's `schema_version`, as JSON) is one this build reads.
pub fn check_schema_version(version: Option<&serde_json::Value>) -> Result<(), SchemaError> {
    match version {
        None => Err(SchemaError::Missing),
        Some(serde_json::Value::String(v)) if READABLE_SCHEMA_VERSIONS.contains(&v.as_str()) => {
            Ok(())
        }
        Some(other) => Err(SchemaError::Unreadable {
            found: other.to_string(),
        }),
    }
}

/// The JSON Schema of report.json.
pub const SCHEMA: &str = include_str!("../../reports/schema/report.schema.json");

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The requirement holds.
    Pass,
    /// The requirement is violated.
    Fail,
    /// Not applicable here (reason given).
    Skip,
    /// No verdict could be reached (inconclusive evidence or a harness error).
    Error,
}

impl std::fmt::Display for Verdict {
    /// The name report.json uses (`pass`, `fail`, `skip`, `error`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Skip => "skip",
            Verdict::Error => "error",
        })
    }
}

/// Why a check was skipped. The difference decides the gate: a case that does not apply to this
/// server is no gap in the evidence, a case not judged for want of input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipKind {
    /// The case does not apply here (a TLS version the server does not offer, gRPC checks with
    /// `--protocol tls`, nothing refused so nothing to log).
    NotApplicable,
    /// The case applies but was not judged: the input it needs was not given (the CA key,
    /// `--health-url`, `--log-file`, a Kubernetes target, RBAC to read a Secret).
    MissingInput,
}

/// One check's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    /// Stable id (`handshake/wrong-ca/tls1.3`).
    pub id: String,
    /// What passing proves, in one line.
    pub title: String,
    /// Suite name.
    pub suite: String,
    /// What the harness did.
    pub action: String,
    /// The MUST it checks.
    pub requirement: String,
    /// The standard or document section the requirement comes from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub spec: String,
    /// Required or advisory.
    pub severity: Severity,
    /// The suite case it comes from (`config/mount` for `config/mount/argocd-server`,
    /// `handshake/wrong-ca` for `handshake/wrong-ca/tls1.3`).
    #[serde(default)]
    pub case: String,
    /// Control ids.
    pub controls: Vec<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// For a skipped check: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_kind: Option<SkipKind>,
    /// What was expected, in words.
    pub expected: String,
    /// One line: what was observed, and why the verdict follows.
    pub reason: String,
    /// Structured observation (probe outcomes, HTTP answers, log lines).
    pub observed: Observed,
    /// Supporting facts, one per line.
    pub evidence: Vec<String>,
    /// Time spent observing, in milliseconds.
    pub duration_ms: f64,
    /// The endpoint (replica) this result is about.
    pub endpoint: String,
    /// The path the probes took to it (endpoint checks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<ProbePath>,
}

/// The path a result's probes took to the repo-server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbePath {
    /// From where the tool ran, through API-server port-forwards into the pod's network namespace
    /// (past any Service, kube-proxy, NetworkPolicy or mesh proxy).
    PortForward,
    /// From where the tool ran, straight to the address (a pod IP, a bare endpoint, a container).
    Direct,
    /// From a pod the run started inside the cluster: through the cluster's DNS, Service proxy and
    /// network policy, as a client component connects.
    InCluster,
}

impl ProbePath {
    /// As the report writes it.
    pub fn name(self) -> &'static str {
        match self {
            ProbePath::PortForward => "port-forward",
            ProbePath::Direct => "direct",
            ProbePath::InCluster => "in-cluster",
        }
    }
}

/// A timed phase of the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Phase {
    /// Phase name (`setup`, `probe`, `evaluate`, `report`, ...).
    pub name: String,
    /// Wall time in milliseconds.
    pub ms: f64,
}

/// About the run itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// Unique run id (also the report folder name).
    pub id: String,
    /// Start, RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: time::OffsetDateTime,
    /// End, RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: time::OffsetDateTime,
    /// This tool's version.
    pub harness_version: String,
    /// The source commit this build of the tool was made from (`unknown` outside a git checkout).
    #[serde(default)]
    pub source_commit: String,
    /// The machine that ran it.
    #[serde(default)]
    pub host: String,
    /// Its operating system (`linux x86_64, Debian GNU/Linux 12, kernel 6.1.0`).
    #[serde(default)]
    pub os: String,
    /// How far the user narrowed the run on purpose (filters, `--partial`).
    #[serde(default)]
    pub scope: Scope,
    /// `endpoint`, `demo`, `kind` or `cluster`.
    pub target: String,
    /// Timed phases.
    pub phases: Vec<Phase>,
    /// True when the run was interrupted or a phase could not complete.
    pub incomplete: bool,
    /// Why an incomplete run stopped (interrupted, or the error of the phase that failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// The selected checks an incomplete run did not judge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_judged: Vec<String>,
    /// Steps after the checks that failed (the policy report, the push, the metrics file): the run has no
    /// verdict then, unless a required check failed. Every writer that comes after one says so.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_steps: Vec<FailedStep>,
    /// The seed the doors' random parts were drawn with (`--seed` replays them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// A step after the checks, named by the flag that asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AfterStep {
    /// `--policy-report`: the PolicyReport applied into the cluster.
    PolicyReport,
    /// `--pushgateway`: the metrics pushed.
    Pushgateway,
    /// `--metrics-file`: the metrics written.
    MetricsFile,
}

impl AfterStep {
    /// The flag that asked for the step.
    pub fn flag(self) -> &'static str {
        match self {
            AfterStep::PolicyReport => "--policy-report",
            AfterStep::Pushgateway => "--pushgateway",
            AfterStep::MetricsFile => "--metrics-file",
        }
    }
}

/// A step after the checks that failed, and why (one sentence, no secret data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedStep {
    /// Which step.
    pub step: AfterStep,
    /// Why it failed.
    pub error: String,
}

impl std::fmt::Display for FailedStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.step.flag(), self.error)
    }
}

/// What the user asked to leave out, on purpose. A run narrowed this way may pass without the
/// checks it left out; anything else missing keeps it from passing.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct Scope {
    /// The command line's arguments as given (`run --target cluster --pki pki ...`), so a reader
    /// can run the same thing again. Paths only: no flag takes key or Secret data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// The suites the checks came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suites: Vec<String>,
    /// Id filters (`run ... handshake/`), `--skip` filters and `--exact`, as given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<String>,
    /// `--partial`: checks that need input the user did not give may be skipped.
    #[serde(default)]
    pub partial: bool,
}

impl Scope {
    /// Whether the user narrowed the run at all.
    pub fn narrowed(&self) -> bool {
        self.partial || !self.filters.is_empty()
    }

    /// One line for report headers.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.filters.is_empty() {
            parts.push(format!(
                "only checks selected by {}",
                self.filters.join(" ")
            ));
        }
        if self.partial {
            parts.push("--partial: checks that need input not given may be skipped".to_owned());
        }
        if parts.is_empty() {
            "every check of the selected suites".to_owned()
        } else {
            parts.join("; ")
        }
    }
}

/// The exit-code rule, as report headers and README state it.
pub const GATE_RULE: &str = "exit 0 (PASS) only when every required check that ran passed, at least one check was judged, the run completed, and no required check was skipped for want of input unless the run was narrowed on purpose (--partial); exit 1 (FAIL) when a required check failed; exit 2 (NO VERDICT) otherwise";

/// What was tested.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Subject {
    /// Addresses probed (one per replica).
    pub addresses: Vec<String>,
    /// Server name used for SNI and identity checks.
    pub server_name: String,
    /// `grpc` or `tls`.
    pub protocol: String,
    /// The build `version.VersionService` reported, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argocd_version: Option<serde_json::Value>,
    /// When no build is known: why (`--protocol tls` asks no gRPC service; or the call failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argocd_version_unknown: Option<String>,
    /// Kubernetes facts (server version, namespace, pods, image digests), for cluster targets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubeFacts>,
}

/// Totals and the overall verdict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Checks that passed.
    pub passed: usize,
    /// Required checks that failed.
    pub failed: usize,
    /// Checks skipped.
    pub skipped: usize,
    /// Checks without a verdict.
    pub errors: usize,
    /// Required checks skipped for want of input (the CA key, `--health-url`, `--log-file`...).
    #[serde(default)]
    pub not_judged: usize,
    /// Advisory checks that failed (reported, not failing the run).
    pub advisories: usize,
    /// `pass`, `fail` or `error`.
    pub verdict: Verdict,
}

impl Summary {
    /// Totals from results, and the verdict by [`GATE_RULE`]: an incomplete run has no verdict;
    /// else any required failure fails it; else a required check without a verdict, a run that
    /// judged nothing, or a required check skipped for want of input (unless `partial`, the user's
    /// own narrowing) leaves it without a verdict.
    pub fn of(checks: &[CheckResult], incomplete: bool, partial: bool) -> Self {
        let count = |v: Verdict, sev: Option<Severity>| {
            checks
                .iter()
                .filter(|c| c.verdict == v && sev.is_none_or(|s| c.severity == s))
                .count()
        };
        let failed = count(Verdict::Fail, Some(Severity::Required));
        let required_errors = count(Verdict::Error, Some(Severity::Required));
        let judged = checks
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Pass | Verdict::Fail))
            .count();
        let not_judged = checks
            .iter()
            .filter(|c| {
                c.verdict == Verdict::Skip
                    && c.severity == Severity::Required
                    && c.skip_kind == Some(SkipKind::MissingInput)
            })
            .count();
        let verdict = if incomplete {
            Verdict::Error
        } else if failed > 0 {
            Verdict::Fail
        } else if required_errors > 0 || judged == 0 || (not_judged > 0 && !partial) {
            Verdict::Error
        } else {
            Verdict::Pass
        };
        Summary {
            passed: count(Verdict::Pass, None),
            failed,
            skipped: count(Verdict::Skip, None),
            errors: count(Verdict::Error, None),
            not_judged,
            advisories: count(Verdict::Fail, Some(Severity::Advisory)),
            verdict,
        }
    }

    /// The process exit code for this verdict: 0 pass, 1 fail, 2 no verdict.
    pub fn exit_code(&self) -> u8 {
        match self.verdict {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
            _ => 2,
        }
    }
}

/// A result's verdict as the human-readable reports print it (an advisory failure is `ADVISORY`).
pub fn verdict_word(v: Verdict, severity: Severity) -> &'static str {
    match (v, severity) {
        (Verdict::Pass, _) => "PASS",
        (Verdict::Fail, Severity::Required) => "FAIL",
        (Verdict::Fail, Severity::Advisory) => "ADVISORY",
        (Verdict::Skip, _) => "SKIP",
        (Verdict::Error, _) => "NO VERDICT",
    }
}

/// What one run's checks say about a control. The legend every writer prints with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ControlStatus {
    /// Every mapped check passed and none of the control's gaps holds.
    Supported,
    /// Some evidence is there, but a mapped check did not pass or a stated gap holds (named).
    Partial,
    /// A required check mapped to it failed.
    Contradicted,
    /// The control does not apply to the repo-server's traffic (the reason is given).
    NotApplicable,
    /// No mapped check passed: nothing in this run speaks to it.
    NotAssessed,
}

impl ControlStatus {
    /// Every status, in the legend's order.
    pub const ALL: [ControlStatus; 5] = [
        ControlStatus::Supported,
        ControlStatus::Partial,
        ControlStatus::Contradicted,
        ControlStatus::NotApplicable,
        ControlStatus::NotAssessed,
    ];

    /// The word reports print.
    pub fn word(self) -> &'static str {
        match self {
            ControlStatus::Supported => "supported",
            ControlStatus::Partial => "partial",
            ControlStatus::Contradicted => "contradicted",
            ControlStatus::NotApplicable => "not applicable",
            ControlStatus::NotAssessed => "not assessed",
        }
    }

    /// What the word means, for the legend.
    pub fn meaning(self) -> &'static str {
        match self {
            ControlStatus::Supported => {
                "every check mapped to the control passed and none of its stated gaps holds"
            }
            ControlStatus::Partial => {
                "evidence is there, but a mapped check did not pass or a stated gap holds (each named)"
            }
            ControlStatus::Contradicted => "a required check mapped to the control failed",
            ControlStatus::NotApplicable => {
                "the control does not apply to the repo-server's traffic (the reason is given)"
            }
            ControlStatus::NotAssessed => "no check mapped to the control passed in this run",
        }
    }

    /// The status `control` gets from `checks` (the results mapped to it): the rule written in
    /// reports/controls.toml. Also returns the stated gaps that hold and why it is not better.
    pub fn decide(control: &Control, checks: &[CheckResult]) -> (Self, Vec<String>, String) {
        if let Some(why) = &control.not_applicable {
            return (ControlStatus::NotApplicable, vec![], why.clone());
        }
        let case_passed = |case: &str| {
            let of_case: Vec<&CheckResult> = checks.iter().filter(|c| c.case == case).collect();
            !of_case.is_empty() && of_case.iter().all(|c| c.verdict == Verdict::Pass)
        };
        // A gap closed by a case that is not mapped to this control is looked up among these
        // checks all the same: the caller passes every result of the run.
        let gaps: Vec<String> = control
            .gaps
            .iter()
            .filter(|g| {
                g.unless_passed
                    .as_deref()
                    .is_none_or(|case| !case_passed(case))
            })
            .map(|g| format!("{}: {}", g.id, g.text))
            .collect();
        let mapped: Vec<&CheckResult> = checks
            .iter()
            .filter(|c| c.controls.contains(&control.id))
            .collect();
        let failed: Vec<String> = mapped
            .iter()
            .filter(|c| c.verdict == Verdict::Fail && c.severity == Severity::Required)
            .map(|c| c.id.clone())
            .collect();
        if !failed.is_empty() {
            return (
                ControlStatus::Contradicted,
                gaps,
                format!("failed: {}", failed.join(", ")),
            );
        }
        if !mapped.iter().any(|c| c.verdict == Verdict::Pass) {
            return (
                ControlStatus::NotAssessed,
                gaps,
                "no mapped check passed in this run".into(),
            );
        }
        let not_passed: Vec<String> = mapped
            .iter()
            .filter(|c| c.verdict != Verdict::Pass)
            .map(|c| format!("{} ({})", c.id, c.verdict))
            .collect();
        if not_passed.is_empty() && gaps.is_empty() {
            return (
                ControlStatus::Supported,
                gaps,
                format!("all {} mapped checks passed", mapped.len()),
            );
        }
        let mut why = Vec::new();
        if !not_passed.is_empty() {
            why.push(format!("did not pass: {}", not_passed.join(", ")));
        }
        if !gaps.is_empty() {
            why.push(format!("{} stated gap(s) hold", gaps.len()));
        }
        (ControlStatus::Partial, gaps, why.join("; "))
    }
}

impl std::fmt::Display for ControlStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

/// A control and what this run shows for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlEvidence {
    /// The control.
    #[serde(flatten)]
    pub control: Control,
    /// Check ids mapped to it.
    pub checks: Vec<String>,
    /// Its status, by the catalogue's rule.
    pub status: ControlStatus,
    /// Its stated gaps that hold in this run, each `id: text`.
    #[serde(default)]
    pub gaps_holding: Vec<String>,
    /// Why the status is what it is (what failed, what did not pass, the N/A reason).
    #[serde(default)]
    pub basis: String,
}

impl ControlEvidence {
    /// Why the status is what it is, as the writers print it: the basis, each gap that holds
    /// (`gap ...`) and when the control applies (`applies ...`).
    pub fn reasons(&self) -> Vec<String> {
        let mut why = vec![self.basis.clone()];
        why.extend(self.gaps_holding.iter().map(|g| format!("gap {g}")));
        why.extend(self.control.applies.iter().map(|a| format!("applies {a}")));
        why
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: String,
    /// About the run.
    pub run: RunInfo,
    /// What was tested.
    pub subject: Subject,
    /// Certificate facts (no private material).
    pub certificates: Vec<CertFacts>,
    /// Results.
    pub checks: Vec<CheckResult>,
    /// Control mapping.
    pub controls: Vec<ControlEvidence>,
    /// Totals.
    pub summary: Summary,
}

impl Report {
    /// What the doors covered, from the checks whose identity was tried at every door: each
    /// result's endpoint, the TLS version of its check id, and its dimensions.
    pub fn door_coverage(&self) -> Vec<(&str, &str, &[Coverage])> {
        self.checks
            .iter()
            .filter_map(|c| match &c.observed {
                Observed::Doors { coverage, .. } if !coverage.is_empty() => Some((
                    c.endpoint.as_str(),
                    c.id.rsplit('/').next().unwrap_or_default(),
                    coverage.as_slice(),
                )),
                _ => None,
            })
            .collect()
    }

    /// Assembles a report, computing the control mapping and summary.
    pub fn new(
        run: RunInfo,
        subject: Subject,
        certificates: Vec<CertFacts>,
        checks: Vec<CheckResult>,
    ) -> Self {
        let summary = Summary::of(&checks, run.incomplete, run.scope.partial);
        let controls = crate::controls::catalogue()
            .iter()
            .filter_map(|control| {
                let mapped: Vec<String> = checks
                    .iter()
                    .filter(|c| c.controls.contains(&control.id))
                    .map(|c| c.id.clone())
                    .collect();
                // A control nothing in this run maps to is left out, unless it is listed as not
                // applicable: the reader sees why it is not claimed.
                if mapped.is_empty() && control.not_applicable.is_none() {
                    return None;
                }
                let (status, gaps_holding, basis) = ControlStatus::decide(control, &checks);
                Some(ControlEvidence {
                    control: control.clone(),
                    checks: mapped,
                    status,
                    gaps_holding,
                    basis,
                })
            })
            .collect();
        Report {
            schema_version: SCHEMA_VERSION.into(),
            run,
            subject,
            certificates,
            checks,
            controls,
            summary,
        }
    }

    /// Records a step after the checks that failed: a run that passed has no verdict now (the
    /// exit code 2 and every writer after it say so); a failed run stays failed.
    pub fn record_failed_step(&mut self, step: AfterStep, error: String) {
        self.run.failed_steps.push(FailedStep { step, error });
        if self.summary.verdict == Verdict::Pass {
            self.summary.verdict = Verdict::Error;
        }
    }

    /// The failed steps after the checks in one line (`None`: none failed).
    pub fn failed_steps_line(&self) -> Option<String> {
        (!self.run.failed_steps.is_empty()).then(|| {
            self.run
                .failed_steps
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// The result in one sentence, as report.md and report.html open with it.
    pub fn overall(&self) -> &'static str {
        let s = &self.summary;
        match s.verdict {
            Verdict::Pass => "PASS — every required check that ran passed",
            Verdict::Fail => "FAIL — at least one required check failed",
            _ if self.run.incomplete => "NO VERDICT — the run is incomplete",
            _ if !self.run.failed_steps.is_empty() => "NO VERDICT — a step after the checks failed",
            _ if s.passed + s.failed == 0 => "NO VERDICT — no check was judged",
            _ if s.not_judged > 0 && s.errors == 0 => {
                "NO VERDICT — required checks were not judged for want of input"
            }
            _ => "NO VERDICT — the evidence is incomplete or inconclusive",
        }
    }

    /// report.json text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report model serializes")
    }

    /// junit.xml text.
    pub fn to_junit(&self) -> String {
        junit::render(self)
    }

    /// Reads a report.json (or the report.json inside a run folder).
    pub fn read(path: &Path) -> Result<Report, String> {
        let file = if path.is_dir() {
            path.join("report.json")
        } else {
            path.to_owned()
        };
        let bytes =
            crate::fsio::read_regular(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        #[derive(Deserialize)]
        struct Version {
            schema_version: Option<serde_json::Value>,
        }
        // The version first: a report of another schema is refused as such, not as a parse error
        // (nor read as this one where its fields happen to fit).
        if let Ok(Version { schema_version }) = serde_json::from_slice::<Version>(&bytes) {
            check_schema_version(schema_version.as_ref())
                .map_err(|e| format!("{}: {e}", file.display()))?;
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{}: not an argocd-mtls-verify report.json: {e}",
                file.display()
            )
        })
    }

    /// report.html text.
    pub fn to_html(&self) -> String {
        html::render(self)
    }

    /// report.md text.
    pub fn to_markdown(&self) -> String {
        markdown::render(self)
    }

    /// The console text.
    pub fn to_console(&self) -> String {
        console::render(self)
    }
}

/// A report of `checks` (ids given, everything else blank) for the writers' tests.
#[cfg(test)]
pub(crate) fn test_report(checks: &[(&str, Verdict, Severity)], stopped: Option<&str>) -> Report {
    let results = checks
        .iter()
        .map(|(id, verdict, severity)| CheckResult {
            id: (*id).into(),
            title: String::new(),
            suite: "endpoint".into(),
            action: String::new(),
            requirement: String::new(),
            spec: String::new(),
            severity: *severity,
            case: (*id).into(),
            controls: vec![],
            verdict: *verdict,
            skip_kind: (*verdict == Verdict::Skip).then_some(SkipKind::NotApplicable),
            expected: "refused".into(),
            reason: format!("{id} was {verdict}"),
            observed: Observed::Nothing,
            evidence: vec![],
            duration_ms: 0.0,
            endpoint: "pod/a \"quoted\"".into(),
            path: Some(ProbePath::InCluster),
        })
        .collect();
    let at = time::macros::datetime!(2026-12-03 12:00 UTC);
    let run = RunInfo {
        id: "r1".into(),
        started_at: at,
        finished_at: at,
        harness_version: "0".into(),
        source_commit: String::new(),
        host: String::new(),
        os: String::new(),
        scope: Scope::default(),
        target: "cluster".into(),
        phases: vec![],
        incomplete: stopped.is_some(),
        stopped: stopped.map(str::to_owned),
        not_judged: vec![],
        failed_steps: vec![],
        seed: None,
    };
    let subject = Subject {
        addresses: vec![],
        server_name: "argocd-repo-server".into(),
        protocol: "grpc".into(),
        argocd_version: None,
        argocd_version_unknown: None,
        kubernetes: None,
    };
    Report::new(run, subject, vec![], results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(verdict: Verdict, severity: Severity, skip_kind: Option<SkipKind>) -> CheckResult {
        CheckResult {
            id: "x/y".into(),
            title: String::new(),
            suite: "s".into(),
            action: String::new(),
            requirement: String::new(),
            spec: String::new(),
            severity,
            case: "x".into(),
            controls: vec![],
            verdict,
            skip_kind,
            expected: String::new(),
            reason: String::new(),
            observed: Observed::Nothing,
            evidence: vec![],
            duration_ms: 0.0,
            endpoint: "e".into(),
            path: None,
        }
    }

    /// The gate rule, row by row.
    #[test]
    fn summary_verdict_and_exit_codes() {
        use Severity::*;
        use Verdict::*;
        const NA: Option<SkipKind> = Some(SkipKind::NotApplicable);
        const MISSING: Option<SkipKind> = Some(SkipKind::MissingInput);
        /// (checks, run incomplete, --partial, expected summary verdict, expected exit code)
        type Case<'a> = (
            &'a [(Verdict, Severity, Option<SkipKind>)],
            bool,
            bool,
            Verdict,
            u8,
        );
        let cases: [Case; 11] = [
            (
                &[(Pass, Required, None), (Skip, Required, NA)],
                false,
                false,
                Pass,
                0,
            ),
            (
                &[(Pass, Required, None), (Fail, Advisory, None)],
                false,
                false,
                Pass,
                0,
            ),
            (
                &[
                    (Pass, Required, None),
                    (Fail, Required, None),
                    (Error, Required, None),
                ],
                false,
                false,
                Fail,
                1,
            ),
            (
                &[(Pass, Required, None), (Error, Required, None)],
                false,
                false,
                Error,
                2,
            ),
            (
                &[(Pass, Required, None), (Error, Advisory, None)],
                false,
                false,
                Pass,
                0,
            ),
            // Incomplete: no verdict, even with a failure on record.
            (&[(Pass, Required, None)], true, false, Error, 2),
            (&[(Fail, Required, None)], true, false, Error, 2),
            // Nothing judged.
            (&[], false, false, Error, 2),
            (
                &[(Skip, Required, NA), (Skip, Required, MISSING)],
                false,
                true,
                Error,
                2,
            ),
            // A required check not judged for want of input: no PASS unless --partial.
            (
                &[(Pass, Required, None), (Skip, Required, MISSING)],
                false,
                false,
                Error,
                2,
            ),
            (
                &[(Pass, Required, None), (Skip, Required, MISSING)],
                false,
                true,
                Pass,
                0,
            ),
        ];
        for (checks, incomplete, partial, verdict, code) in cases {
            let results: Vec<CheckResult> =
                checks.iter().map(|(v, s, k)| check(*v, *s, *k)).collect();
            let summary = Summary::of(&results, incomplete, partial);
            assert_eq!(
                (summary.verdict, summary.exit_code()),
                (verdict, code),
                "{checks:?} incomplete={incomplete} partial={partial}"
            );
        }
    }

    /// A step after the checks that failed turns a pass into no verdict (exit 2) and a failure
    /// stays a failure (exit 1); every writer names the step and its cause.
    #[test]
    fn a_failed_step_after_the_checks_is_in_every_format() {
        use Severity::Required;
        use Verdict::*;
        for (verdict, code) in [(Pass, 2), (Fail, 1)] {
            let mut report = test_report(&[("handshake/x", verdict, Required)], None);
            report.record_failed_step(
                AfterStep::PolicyReport,
                "the cluster has no PolicyReport resource".into(),
            );
            assert_eq!(report.summary.exit_code(), code, "{verdict}");
            let said = "--policy-report: the cluster has no PolicyReport resource";
            for (format, text) in [
                ("report.json", report.to_json()),
                ("report.md", report.to_markdown()),
                ("report.html", report.to_html()),
                ("junit.xml", report.to_junit()),
                ("console", report.to_console()),
            ] {
                let wanted = if format == "report.json" {
                    "\"step\": \"policy-report\""
                } else {
                    said
                };
                assert!(text.contains(wanted), "{format} ({verdict}):\n{text}");
            }
            let metrics = metrics::render(&report);
            assert!(metrics.contains("step=\"--policy-report\"} 1"), "{metrics}");
        }
    }

    #[test]
    fn verdicts_print_as_report_json_names_them() {
        for v in [Verdict::Pass, Verdict::Fail, Verdict::Skip, Verdict::Error] {
            assert_eq!(serde_json::to_value(v).unwrap(), v.to_string());
        }
    }

    #[test]
    fn formats_parse() {
        assert_eq!(
            Formats::parse("json,md").unwrap(),
            Formats {
                json: true,
                junit: false,
                markdown: true,
                html: false,
                oscal: false,
            }
        );
        assert!(Formats::parse("pdf").is_err());
        assert!(Formats::parse("").is_err());
        assert!(Formats::parse("md,oscal").unwrap_err().contains("add json"));
        assert!(Formats::parse("json,oscal").unwrap().oscal);
    }

    /// The status rule of reports/controls.toml, row by row: never `supported` while a stated
    /// gap holds; a gap closed by a case holds until every result of that case passed.
    #[test]
    fn control_status_follows_the_catalogues_rule() {
        use crate::controls::{Control, Gap};
        use ControlStatus::*;
        use Severity::{Advisory, Required};
        use Verdict::*;
        let control = |gaps: Vec<Gap>, not_applicable: Option<&str>| Control {
            id: "C".into(),
            framework: "F".into(),
            title: "T".into(),
            clause: "c".into(),
            statement: "s".into(),
            accepts: vec![],
            applies: None,
            not_applicable: not_applicable.map(str::to_owned),
            gaps,
        };
        let gap = |unless: Option<&str>| Gap {
            id: "g".into(),
            text: "the gap".into(),
            unless_passed: unless.map(str::to_owned),
        };
        let result = |case: &str, verdict, severity, mapped: bool| {
            let mut r = check(verdict, severity, None);
            r.id = format!("{case}/x");
            r.case = case.into();
            if mapped {
                r.controls = vec!["C".into()];
            }
            r
        };
        let rows: Vec<(&str, Control, Vec<CheckResult>, ControlStatus)> = vec![
            (
                "all pass, no gap",
                control(vec![], None),
                vec![result("a", Pass, Required, true)],
                Supported,
            ),
            (
                "all pass, a gap that always holds",
                control(vec![gap(None)], None),
                vec![result("a", Pass, Required, true)],
                Partial,
            ),
            (
                "a required failure",
                control(vec![], None),
                vec![
                    result("a", Pass, Required, true),
                    result("b", Fail, Required, true),
                ],
                Contradicted,
            ),
            (
                "an advisory failure",
                control(vec![], None),
                vec![
                    result("a", Pass, Required, true),
                    result("b", Fail, Advisory, true),
                ],
                Partial,
            ),
            (
                "one skipped",
                control(vec![], None),
                vec![
                    result("a", Pass, Required, true),
                    result("b", Skip, Required, true),
                ],
                Partial,
            ),
            (
                "nothing passed",
                control(vec![], None),
                vec![result("a", Skip, Required, true)],
                NotAssessed,
            ),
            (
                "not applicable",
                control(vec![], Some("internal traffic")),
                vec![],
                NotApplicable,
            ),
            (
                "gap closed: its case passed (mapped elsewhere)",
                control(vec![gap(Some("u"))], None),
                vec![
                    result("a", Pass, Required, true),
                    result("u", Pass, Advisory, false),
                ],
                Supported,
            ),
            (
                "gap open: its case failed once",
                control(vec![gap(Some("u"))], None),
                vec![
                    result("a", Pass, Required, true),
                    result("u", Pass, Advisory, false),
                    result("u", Fail, Advisory, false),
                ],
                Partial,
            ),
            (
                "gap open: its case did not run",
                control(vec![gap(Some("u"))], None),
                vec![result("a", Pass, Required, true)],
                Partial,
            ),
        ];
        for (name, control, results, want) in rows {
            let (status, gaps, basis) = ControlStatus::decide(&control, &results);
            assert_eq!(status, want, "{name}: {basis}");
            if status == Supported {
                assert!(gaps.is_empty(), "{name}");
            }
            if status == Partial && basis.contains("gap") {
                assert_eq!(gaps, ["g: the gap"], "{name}");
            }
        }
    }
}
