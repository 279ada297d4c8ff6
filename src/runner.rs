//! The runner: selects checks from suites (cargo-test-style filters), observes every endpoint,
//! evaluates, and says what it does as [`events`](crate::report::events). Reporting is separate: the progress lines are a
//! reporter of those events, and the console table and the report files are all rendered from
//! the one [`Report`](crate::report::Report) the results make.

pub mod kube;

use crate::checks::{self, ProbeSettings};
use crate::endpoint::Endpoint;
use crate::pki::ProbePki;
use crate::report::events::{Event, Events};
use crate::report::{CheckResult, Phase, RunInfo, Subject};
use crate::suite::{Check, Suite};

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

/// What executing the checks produced.
#[derive(Debug, Default)]
pub struct Executed {
    /// One result per check and endpoint.
    pub results: Vec<CheckResult>,
    /// The build VersionService reported, when it answered.
    pub argocd_version: Option<serde_json::Value>,
    /// The certificate each endpoint presented to the valid client.
    pub server_certificates: Vec<crate::x509::CertFacts>,
}

/// Observes and evaluates `checks` on every endpoint (one replica after another, each concurrent
/// inside), telling `events` as each endpoint starts, is observed, and each check is judged.
pub async fn execute(
    endpoints: &[Endpoint],
    pki: &ProbePki,
    checks: &[Check],
    settings: &ProbeSettings,
    events: &Events,
) -> Executed {
    let mut out = Executed::default();
    for endpoint in endpoints {
        events.emit(Event::EndpointStarted {
            label: &endpoint.label,
            addr: endpoint.addr,
            checks: checks.len(),
        });
        let progress = |done, planned| {
            events.emit(Event::Attempts {
                label: &endpoint.label,
                done,
                planned,
            })
        };
        let obs = checks::observe(endpoint, pki, checks, settings, &progress).await;
        events.emit(Event::EndpointObserved {
            label: &endpoint.label,
            ms: obs.elapsed_ms,
        });
        if out.argocd_version.is_none() {
            out.argocd_version = obs.grpc_version.clone().and_then(Result::ok);
        }
        let met = [
            crate::probe::TlsVersion::Tls13,
            crate::probe::TlsVersion::Tls12,
        ]
        .into_iter()
        .find_map(|v| obs.control(v)?.server_chain.leaf_der.clone());
        if let Some(facts) = met.and_then(|der| crate::x509::CertFacts::from_der(&der).ok()) {
            out.server_certificates.push(
                facts
                    .with_role("server (presented)")
                    .with_source(format!("{} ({})", endpoint.label, endpoint.addr)),
            );
        }
        for check in checks {
            let result = checks::evaluate(check, &obs, endpoint);
            events.emit(Event::CheckJudged(&result));
            out.results.push(result);
        }
    }
    out
}

/// Prints the selected check ids without probing anything, one per line as `cargo test -- --list`
/// does (`[suite] id: test`), then their number.
pub fn print_list(checks: &[Check]) {
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!("[{}] {}: test\n", c.suite, c.id));
    }
    out.push_str(&format!("\n{} checks\n", checks.len()));
    let refusals = checks.iter().any(|c| {
        matches!(
            c.case.kind,
            crate::suite::CaseKind::Handshake {
                expect: crate::suite::Expect::Rejected,
                ..
            }
        )
    });
    if refusals {
        out.push_str(&door_list(crate::checks::DoorSpace::shipped()));
    }
    crate::report::console::print(&out);
}

/// The planned doors, from the table: each server-name variant, ALPN offer, group, framing and
/// hand-built hello, base or found by behaviour, and what it models (the names a certificate adds are known once the controls met it).
fn door_list(space: &crate::checks::DoorSpace) -> String {
    let mut out = String::from(
        "\ndoors (suites/doors.toml): the refusal without a certificate knocks at every one; every other refusal at the base ones and at one door of each behaviour found elsewhere\n",
    );
    let kind = |base: bool| if base { "base" } else { "explored" };
    for row in &space.sni {
        out.push_str(&format!(
            "  server name {} [{}]: {}\n",
            row.variant.name(),
            kind(row.base),
            row.models
        ));
    }
    for row in &space.alpn {
        let offer = match (row.unregistered, row.offer.as_slice()) {
            (true, _) => "an id no registry holds, drawn from --seed".to_owned(),
            (false, []) => "none".to_owned(),
            (false, ids) => format!("`{}`", ids.join(",")),
        };
        out.push_str(&format!(
            "  ALPN {offer} [{}]: {}\n",
            kind(row.base),
            row.models
        ));
    }
    for row in &space.group {
        out.push_str(&format!(
            "  key exchange group `{}` alone [explored]: {}\n",
            row.offer.name(),
            row.models
        ));
    }
    for row in &space.signature {
        let only = if row.offer.usable_under(crate::probe::TlsVersion::Tls13) {
            ""
        } else {
            "; TLS 1.2 only"
        };
        out.push_str(&format!(
            "  signature algorithms `{}` alone [explored{only}]: {}\n",
            row.offer.name(),
            row.models
        ));
    }
    for row in &space.framing {
        out.push_str(&format!(
            "  {} [explored]: {}\n",
            row.framing().words(),
            row.models
        ));
    }
    for row in &space.hand_built {
        let versions = match row.variant {
            crate::checks::HandBuilt::X25519MlKem768 => "TLS 1.3",
            _ => "TLS 1.2 and 1.3",
        };
        out.push_str(&format!(
            "  hand-built {} [explored; no certificate, {versions}]: {}\n",
            row.variant.name(),
            row.models
        ));
    }
    out
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
        source_commit: env!("ARGOCD_MTLS_VERIFY_COMMIT").into(),
        host: host_name(),
        os: os_description(),
        scope: Default::default(),
        target: target.into(),
        phases,
        incomplete,
        stopped: None,
        not_judged: vec![],
        failed_steps: vec![],
        seed: None,
    }
}

/// This machine's name, for the report's provenance.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// `linux x86_64, Debian GNU/Linux 12 (bookworm), kernel 6.1.0`, as far as the machine tells.
fn os_description() -> String {
    let mut out = format!("{} {}", std::env::consts::OS, std::env::consts::ARCH);
    if let Some(name) = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
    {
        out.push_str(&format!(", {name}"));
    }
    if let Ok(kernel) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        out.push_str(&format!(", kernel {}", kernel.trim()));
    }
    out
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
            .map(|e| e.protocol.name().to_owned())
            .unwrap_or_default(),
        argocd_version_unknown: version_unknown(
            argocd_version.is_some(),
            endpoints.first().map(|e| e.protocol),
        ),
        argocd_version,
        kubernetes: None,
    }
}

/// Why the report names no Argo CD build, if it names none.
pub fn version_unknown(known: bool, protocol: Option<crate::endpoint::Protocol>) -> Option<String> {
    match (known, protocol) {
        (true, _) => None,
        (false, Some(p)) if p != crate::endpoint::Protocol::Grpc => Some(format!(
            "unknown: probed with --protocol {}, so the gRPC VersionService was not asked",
            p.name()
        )),
        (false, _) => Some(
            "unknown: version.VersionService did not answer (see grpc/version), or it was not selected"
                .into(),
        ),
    }
}

/// The ids of the selected checks that got no result: what an interrupted run did not judge. A
/// Kubernetes case is judged when any of its findings (`<case id>/<subject>`) has a result.
pub fn not_judged(selected: &[Check], results: &[CheckResult]) -> Vec<String> {
    selected
        .iter()
        .filter(|c| {
            !results.iter().any(|r| {
                r.id == c.id
                    || r.id
                        .strip_prefix(&c.id)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
        })
        .map(|c| c.id.clone())
        .collect()
}
