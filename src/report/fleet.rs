//! `aggregate`: many reports (clusters x days, as a CronJob in each cluster writes them) into
//! one fleet report. Each report's `report.json.sha256` is checked first; a report that does not
//! match is rejected, never counted. A cluster's reports of one day count once (the latest run of
//! that day). Per cluster: the gate of its latest report, its failing required checks, the Argo
//! CD build that answered, its certificates' nearest expiry; clusters sorted worst first.
//!
//! Reports are read with a slim view (the fields a fleet needs; evidence is skipped by the
//! parser), on every core, so a thousand reports take about a second.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{SchemaError, Verdict, check_schema_version};
use crate::suite::Severity;

/// A report the fleet did not count, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rejected {
    /// The report.json.
    pub path: PathBuf,
    /// Why: its digest differs from its `.sha256`, the `.sha256` is missing, or it does not parse.
    pub why: String,
}

/// A report left out because a later one of the same cluster and day is counted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Superseded {
    /// The report.json left out.
    pub path: PathBuf,
    /// The one counted instead.
    pub by: PathBuf,
}

/// One day of a cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Day {
    /// `YYYY-MM-DD` (UTC) of the run.
    pub day: String,
    /// The run's gate: `pass`, `fail`, `error` (no verdict).
    pub verdict: Verdict,
    /// Its report.
    pub report: PathBuf,
}

/// One cluster of the fleet, as its latest counted report shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClusterEntry {
    /// The cluster (kubeconfig context or kind cluster), or the address of an endpoint run.
    pub cluster: String,
    /// The Argo CD namespace (empty for an endpoint run).
    pub namespace: String,
    /// The latest report's gate.
    pub verdict: Verdict,
    /// Whether the latest run stopped early.
    pub incomplete: bool,
    /// The latest report.
    pub report: PathBuf,
    /// When the latest run started.
    pub started_at: String,
    /// The Argo CD build VersionService reported, when one answered.
    pub argocd_version: Option<String>,
    /// Required checks that failed in the latest run: `id [endpoint]`.
    pub failing: Vec<String>,
    /// Checks without a verdict in the latest run.
    pub no_verdict: Vec<String>,
    /// The fewest days left of any certificate the latest run saw.
    pub certificate_horizon_days: Option<i64>,
    /// Every counted day, oldest first.
    pub days: Vec<Day>,
}

/// The fleet report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fleet {
    /// Reports found.
    pub reports_read: usize,
    /// Reports counted (one per cluster and day).
    pub reports_counted: usize,
    /// Clusters, worst first.
    pub clusters: Vec<ClusterEntry>,
    /// Reports not counted: a later run of the same cluster and day is.
    pub superseded: Vec<Superseded>,
    /// Reports refused (integrity or format).
    pub rejected: Vec<Rejected>,
}

impl Fleet {
    /// 0: every cluster's latest gate passed and nothing was rejected; 1: a cluster failed or
    /// has no verdict; 2: a report was rejected, or there was none.
    pub fn exit_code(&self) -> u8 {
        if !self.rejected.is_empty() || self.clusters.is_empty() {
            2
        } else if self.clusters.iter().any(|c| c.verdict != Verdict::Pass) {
            1
        } else {
            0
        }
    }
}

// The slim view of a report.json: only what a fleet needs.
#[derive(Deserialize)]
struct Slim {
    #[serde(default)]
    schema_version: Option<serde_json::Value>,
    run: SlimRun,
    subject: SlimSubject,
    summary: SlimSummary,
    #[serde(default)]
    certificates: Vec<SlimCert>,
    #[serde(default)]
    checks: Vec<SlimCheck>,
}

#[derive(Deserialize)]
struct SlimRun {
    started_at: String,
    #[serde(default)]
    incomplete: bool,
}

#[derive(Deserialize)]
struct SlimSubject {
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(default)]
    argocd_version: Option<SlimVersion>,
    #[serde(default)]
    kubernetes: Option<SlimKube>,
}

#[derive(Deserialize)]
struct SlimVersion {
    #[serde(default)]
    version: String,
}

#[derive(Deserialize)]
struct SlimKube {
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    namespace: String,
}

#[derive(Deserialize)]
struct SlimSummary {
    verdict: Verdict,
}

#[derive(Deserialize)]
struct SlimCert {
    #[serde(default)]
    days_left: Option<i64>,
}

#[derive(Deserialize)]
struct SlimCheck {
    id: String,
    verdict: Verdict,
    #[serde(default)]
    severity: Severity,
    #[serde(default)]
    endpoint: String,
}

/// One report, read and checked.
struct Read {
    path: PathBuf,
    slim: Slim,
}

/// Every `report.json` under `dirs` (a file given directly counts too), sorted.
pub fn find_reports(dirs: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = dirs.to_vec();
    while let Some(path) = stack.pop() {
        let meta = std::fs::metadata(&path)?;
        if meta.is_file() {
            if path.file_name().is_some_and(|n| n == "report.json") {
                out.push(path);
            }
            continue;
        }
        for entry in std::fs::read_dir(&path)? {
            stack.push(entry?.path());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Why a report is not counted.
enum Unread {
    /// Rejected, and the fleet report says why: unreadable, its digest differs, it does not parse.
    Rejected(String),
    /// A schema this build does not read: the whole aggregation is refused.
    Schema(SchemaError),
}

/// Why `aggregate` gives no fleet report.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A folder could not be listed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A report of a schema this build does not read: counting it as if it were would be a guess.
    #[error("{}: {error}", path.display())]
    Schema {
        /// The report.json.
        path: PathBuf,
        /// Its version and the ones this build reads.
        error: SchemaError,
    },
}

fn read_one(path: &Path) -> Result<Slim, Unread> {
    read_trusted(path)
        .map_err(Unread::Rejected)
        .and_then(|slim| {
            check_schema_version(slim.schema_version.as_ref()).map_err(Unread::Schema)?;
            Ok(slim)
        })
}

fn read_trusted(path: &Path) -> Result<Slim, String> {
    let bytes = crate::fsio::read_regular(path).map_err(|e| format!("cannot read it: {e}"))?;
    let sum_path = path.with_file_name("report.json.sha256");
    let recorded = crate::fsio::read_regular_text(&sum_path).map_err(|_| {
        "no report.json.sha256 beside it: its integrity cannot be checked".to_owned()
    })?;
    let recorded = recorded.split_whitespace().next().unwrap_or_default();
    let actual = hex::encode(Sha256::digest(&bytes));
    if !recorded.eq_ignore_ascii_case(&actual) {
        return Err(format!(
            "its SHA-256 is {actual}, report.json.sha256 says {recorded}: changed after it was written"
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("not an argocd-mtls-verify report: {e}"))
}

/// Reads and checks every report, on every core.
fn read_all(paths: &[PathBuf]) -> Vec<Result<Read, (PathBuf, Unread)>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(paths.len().max(1));
    let chunk = paths.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = paths
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|path| {
                            read_one(path)
                                .map(|slim| Read {
                                    path: path.clone(),
                                    slim,
                                })
                                .map_err(|why| (path.clone(), why))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a reader thread does not panic"))
            .collect()
    })
}

/// How bad a gate is, for sorting: lower is worse.
fn rank(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Fail => 0,
        Verdict::Pass => 2,
        Verdict::Error | Verdict::Skip => 1,
    }
}

/// Aggregates the reports under `dirs` into a fleet.
pub fn aggregate(dirs: &[PathBuf]) -> Result<Fleet, FleetError> {
    let paths = find_reports(dirs)?;
    let mut rejected = Vec::new();
    // (cluster, namespace) -> day -> the latest report of that day.
    let mut by_cluster: BTreeMap<(String, String), BTreeMap<String, Read>> = BTreeMap::new();
    let mut superseded = Vec::new();
    for read in read_all(&paths) {
        let read = match read {
            Ok(read) => read,
            Err((path, Unread::Rejected(why))) => {
                rejected.push(Rejected { path, why });
                continue;
            }
            Err((path, Unread::Schema(error))) => return Err(FleetError::Schema { path, error }),
        };
        let key = match &read.slim.subject.kubernetes {
            Some(k) if !k.cluster.is_empty() => (k.cluster.clone(), k.namespace.clone()),
            _ => (
                read.slim
                    .subject
                    .addresses
                    .first()
                    .cloned()
                    .unwrap_or_default(),
                String::new(),
            ),
        };
        let day = read
            .slim
            .run
            .started_at
            .get(..10)
            .unwrap_or_default()
            .to_owned();
        let days = by_cluster.entry(key).or_default();
        match days.remove(&day) {
            None => {
                days.insert(day, read);
            }
            Some(held) => {
                let (keep, drop) = if read.slim.run.started_at > held.slim.run.started_at {
                    (read, held)
                } else {
                    (held, read)
                };
                superseded.push(Superseded {
                    path: drop.path,
                    by: keep.path.clone(),
                });
                days.insert(day, keep);
            }
        }
    }
    let mut counted = 0;
    let mut clusters: Vec<ClusterEntry> = by_cluster
        .into_iter()
        .filter_map(|((cluster, namespace), days)| {
            counted += days.len();
            let history: Vec<Day> = days
                .iter()
                .map(|(day, r)| Day {
                    day: day.clone(),
                    verdict: r.slim.summary.verdict,
                    report: r.path.clone(),
                })
                .collect();
            let (_, latest) = days.into_iter().next_back()?;
            let checks = &latest.slim.checks;
            let named = |c: &SlimCheck| {
                if c.endpoint.is_empty() {
                    c.id.clone()
                } else {
                    format!("{} [{}]", c.id, c.endpoint)
                }
            };
            Some(ClusterEntry {
                cluster,
                namespace,
                verdict: latest.slim.summary.verdict,
                incomplete: latest.slim.run.incomplete,
                started_at: latest.slim.run.started_at.clone(),
                argocd_version: latest
                    .slim
                    .subject
                    .argocd_version
                    .as_ref()
                    .map(|v| v.version.clone()),
                failing: checks
                    .iter()
                    .filter(|c| c.verdict == Verdict::Fail && c.severity == Severity::Required)
                    .map(named)
                    .collect(),
                no_verdict: checks
                    .iter()
                    .filter(|c| c.verdict == Verdict::Error)
                    .map(named)
                    .collect(),
                certificate_horizon_days: latest
                    .slim
                    .certificates
                    .iter()
                    .filter_map(|c| c.days_left)
                    .min(),
                report: latest.path,
                days: history,
            })
        })
        .collect();
    clusters.sort_by(|a, b| {
        rank(a.verdict)
            .cmp(&rank(b.verdict))
            .then(b.failing.len().cmp(&a.failing.len()))
            .then(
                a.certificate_horizon_days
                    .unwrap_or(i64::MAX)
                    .cmp(&b.certificate_horizon_days.unwrap_or(i64::MAX)),
            )
            .then(a.cluster.cmp(&b.cluster))
    });
    superseded.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Fleet {
        reports_read: paths.len(),
        reports_counted: counted,
        clusters,
        superseded,
        rejected,
    })
}

/// Writes `fleet.json` (+ `.sha256`), `fleet.md` and `fleet-junit.xml` into a fresh folder
/// `<out>/fleet-<id>/`, all or nothing; returns the folder.
pub fn write(fleet: &Fleet, out: &Path) -> std::io::Result<PathBuf> {
    let dir = out.join(format!(
        "fleet-{}",
        super::new_run_id(time::OffsetDateTime::now_utc())
    ));
    std::fs::create_dir_all(&dir)?;
    let json = serde_json::to_string_pretty(fleet).map_err(std::io::Error::other)?;
    let digest = hex::encode(Sha256::digest(json.as_bytes()));
    let mut staged = crate::fsio::StagedFiles::default();
    let mode = crate::fsio::PUBLIC_MODE;
    staged.stage(&dir.join("fleet.json"), json.as_bytes(), mode)?;
    staged.stage(
        &dir.join("fleet.json.sha256"),
        format!("{digest}  fleet.json\n").as_bytes(),
        mode,
    )?;
    staged.stage(
        &dir.join("fleet.md"),
        render_markdown(fleet).as_bytes(),
        mode,
    )?;
    staged.stage(
        &dir.join("fleet-junit.xml"),
        render_junit(fleet).as_bytes(),
        mode,
    )?;
    staged.commit()?;
    Ok(dir)
}

/// The fleet as Markdown: one row per cluster, worst first, then what was not counted.
pub fn render_markdown(fleet: &Fleet) -> String {
    let mut out = String::from("# Argo CD repo-server mTLS: fleet\n\n");
    out.push_str(&format!(
        "{} reports read, {} counted (one per cluster and day), {} superseded, {} rejected.\n\n",
        fleet.reports_read,
        fleet.reports_counted,
        fleet.superseded.len(),
        fleet.rejected.len()
    ));
    out.push_str("| cluster | namespace | gate | Argo CD | nearest certificate expiry | failing required checks | days |\n|---|---|---|---|---|---|---|\n");
    for c in &fleet.clusters {
        out.push_str(&format!(
            "| {} | {} | {}{} | {} | {} | {} | {} |\n",
            c.cluster,
            c.namespace,
            c.verdict.to_string().to_uppercase(),
            if c.incomplete { " (incomplete)" } else { "" },
            c.argocd_version.as_deref().unwrap_or("unknown"),
            c.certificate_horizon_days
                .map(|d| format!("{d} days"))
                .unwrap_or_else(|| "-".into()),
            if c.failing.is_empty() {
                "-".to_owned()
            } else {
                c.failing.join("<br>")
            },
            c.days
                .iter()
                .map(|d| format!("{} {}", d.day, d.verdict))
                .collect::<Vec<_>>()
                .join("<br>")
        ));
    }
    if !fleet.rejected.is_empty() {
        out.push_str("\n## Rejected (not counted)\n\n");
        for r in &fleet.rejected {
            out.push_str(&format!("- `{}`: {}\n", r.path.display(), r.why));
        }
    }
    if !fleet.superseded.is_empty() {
        out.push_str("\n## Superseded (a later run of the same cluster and day is counted)\n\n");
        for s in &fleet.superseded {
            out.push_str(&format!(
                "- `{}` by `{}`\n",
                s.path.display(),
                s.by.display()
            ));
        }
    }
    out
}

/// The fleet as JUnit: one suite per cluster, one case for its gate and one per failing
/// required check of its latest report.
pub fn render_junit(fleet: &Fleet) -> String {
    use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
    let mut junit = quick_junit::Report::new("argocd-mtls-verify fleet");
    for c in &fleet.clusters {
        let mut suite = TestSuite::new(format!("{} / {}", c.cluster, c.namespace));
        let status = |failed: bool, message: String| {
            if failed {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(message);
                s
            } else {
                TestCaseStatus::success()
            }
        };
        suite.add_test_case(TestCase::new(
            "gate",
            status(
                c.verdict != Verdict::Pass,
                format!("{} ({})", c.verdict, c.report.display()),
            ),
        ));
        for failing in &c.failing {
            suite.add_test_case(TestCase::new(
                failing.clone(),
                status(true, "required check failed".into()),
            ));
        }
        junit.add_test_suite(suite);
    }
    junit
        .to_string()
        .unwrap_or_else(|e| format!("<!-- junit: {e} -->"))
}

/// A minimal report.json of one run, with its `.sha256` written beside it, for the tests and
/// the benchmark. `padding` bytes of evidence make it as large as a real report (~600 KB).
#[doc(hidden)]
pub fn write_sample(
    dir: &Path,
    cluster: &str,
    started_at: &str,
    verdict: &str,
    failing: &[&str],
    padding: usize,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let mut checks: Vec<serde_json::Value> = failing
        .iter()
        .map(|id| {
            serde_json::json!({"id": id, "verdict": "fail", "severity": "required",
                "endpoint": "argocd-repo-server-0", "evidence": {}})
        })
        .collect();
    checks.push(
        serde_json::json!({"id": "server/identity", "verdict": "pass",
        "severity": "required", "endpoint": "argocd-repo-server-0",
        "evidence": {"text": "x".repeat(padding)}}),
    );
    let report = serde_json::json!({
        "schema_version": super::SCHEMA_VERSION,
        "run": {"started_at": started_at, "target": "cluster", "incomplete": false},
        "subject": {"addresses": [], "argocd_version": {"version": "v3.5.1"},
                    "kubernetes": {"cluster": cluster, "namespace": "argocd"}},
        "certificates": [{"days_left": 200}, {"days_left": 40}],
        "checks": checks,
        "summary": {"verdict": verdict},
    });
    let json = serde_json::to_vec_pretty(&report).map_err(std::io::Error::other)?;
    let path = dir.join("report.json");
    std::fs::write(&path, &json)?;
    std::fs::write(
        dir.join("report.json.sha256"),
        format!("{}  report.json\n", hex::encode(Sha256::digest(&json))),
    )?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two clusters over two days, one run twice in a day, one tampered report and one without
    /// its digest: the latest run of a day counts, the other is listed as superseded; the
    /// tampered and the unsigned ones are rejected (exit 2), never counted; the failing cluster
    /// comes first with its failing checks.
    #[test]
    fn a_fleet_counts_each_cluster_day_once_and_rejects_what_does_not_match() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write_sample(
            &r.join("a/1"),
            "prod",
            "2026-12-01T02:00:00Z",
            "pass",
            &[],
            0,
        )
        .unwrap();
        let early = write_sample(
            &r.join("a/2"),
            "prod",
            "2026-12-02T02:00:00Z",
            "pass",
            &[],
            0,
        )
        .unwrap();
        let late = write_sample(
            &r.join("a/3"),
            "prod",
            "2026-12-02T14:00:00Z",
            "fail",
            &["handshake/no-client-cert/tls1.3"],
            0,
        )
        .unwrap();
        write_sample(
            &r.join("b/1"),
            "staging",
            "2026-12-02T02:00:00Z",
            "pass",
            &[],
            0,
        )
        .unwrap();
        let fleet = aggregate(&[r.to_path_buf()]).unwrap();
        assert_eq!(fleet.exit_code(), 1);
        assert_eq!((fleet.reports_read, fleet.reports_counted), (4, 3));
        assert_eq!(
            fleet.superseded,
            vec![Superseded {
                path: early,
                by: late.clone()
            }]
        );
        let prod = &fleet.clusters[0];
        assert_eq!(
            (prod.cluster.as_str(), prod.verdict),
            ("prod", Verdict::Fail)
        );
        assert_eq!(
            prod.failing,
            vec!["handshake/no-client-cert/tls1.3 [argocd-repo-server-0]"]
        );
        assert_eq!(prod.report, late);
        assert_eq!(prod.days.len(), 2);
        assert_eq!(prod.certificate_horizon_days, Some(40));
        assert_eq!(prod.argocd_version.as_deref(), Some("v3.5.1"));
        assert_eq!(fleet.clusters[1].cluster, "staging");

        // One byte changed after writing: rejected, and the whole aggregate exits 2.
        let tampered = write_sample(
            &r.join("c/1"),
            "dev",
            "2026-12-02T02:00:00Z",
            "pass",
            &[],
            0,
        )
        .unwrap();
        let text = std::fs::read_to_string(&tampered).unwrap();
        std::fs::write(&tampered, text.replace("\"pass\"", "\"fail\"")).unwrap();
        let unsigned =
            write_sample(&r.join("d/1"), "qa", "2026-12-02T02:00:00Z", "pass", &[], 0).unwrap();
        std::fs::remove_file(unsigned.with_file_name("report.json.sha256")).unwrap();
        let fleet = aggregate(&[r.to_path_buf()]).unwrap();
        assert_eq!(fleet.exit_code(), 2);
        assert_eq!(fleet.rejected.len(), 2, "{:?}", fleet.rejected);
        assert!(
            fleet.rejected[0]
                .why
                .contains("changed after it was written")
        );
        assert!(fleet.rejected[1].why.contains("no report.json.sha256"));
        assert!(
            !fleet
                .clusters
                .iter()
                .any(|c| c.cluster == "dev" || c.cluster == "qa")
        );
        let md = render_markdown(&fleet);
        assert!(
            md.contains("## Rejected") && md.contains("| prod | argocd | FAIL |"),
            "{md}"
        );
        let junit = render_junit(&fleet);
        assert_eq!(junit.matches("<testsuite ").count(), 2, "{junit}");
    }

    /// A report of a schema this build does not read (signed, so it is not merely rejected) stops
    /// the aggregation, naming the file and both versions; one without any version too.
    #[test]
    fn a_report_of_an_unknown_schema_is_refused_not_counted() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write_sample(&r.join("a"), "prod", "2026-12-01T02:00:00Z", "pass", &[], 0).unwrap();
        let newer =
            write_sample(&r.join("b"), "qa", "2026-12-01T02:00:00Z", "pass", &[], 0).unwrap();
        let resign = |path: &Path, edit: &dyn Fn(&mut serde_json::Value)| {
            let mut doc: serde_json::Value =
                serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            edit(&mut doc);
            let json = serde_json::to_vec(&doc).unwrap();
            std::fs::write(path, &json).unwrap();
            std::fs::write(
                path.with_file_name("report.json.sha256"),
                format!("{}  report.json\n", hex::encode(Sha256::digest(&json))),
            )
            .unwrap();
        };
        resign(&newer, &|d| d["schema_version"] = "2".into());
        match aggregate(&[r.to_path_buf()]) {
            Err(FleetError::Schema { path, error }) => {
                assert_eq!(path, newer);
                assert_eq!(
                    error,
                    SchemaError::Unreadable {
                        found: "\"2\"".into()
                    }
                );
                let text = FleetError::Schema { path, error }.to_string();
                assert!(
                    text.contains("b/report.json")
                        && text.contains("schema_version is \"2\"")
                        && text.contains("reads schema version 1"),
                    "{text}"
                );
            }
            other => panic!("{:?}", other.map(|f| f.exit_code())),
        }
        resign(&newer, &|d| {
            d.as_object_mut().unwrap().remove("schema_version");
        });
        assert!(matches!(
            aggregate(&[r.to_path_buf()]),
            Err(FleetError::Schema {
                error: SchemaError::Missing,
                ..
            })
        ));
        // The version this build writes is read.
        resign(&newer, &|d| {
            d["schema_version"] = super::super::SCHEMA_VERSION.into()
        });
        assert_eq!(aggregate(&[r.to_path_buf()]).unwrap().reports_read, 2);
    }
}
