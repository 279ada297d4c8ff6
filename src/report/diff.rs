//! Comparing two reports (before and after a migration, last week and today): every check whose
//! verdict or evidence changed, and the checks only one of them has. Details that differ on every
//! run (timings, ports, timestamps, fingerprints of freshly minted certificates) are masked first,
//! so an unchanged server compares equal to itself.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{CheckResult, Report, Verdict};

/// What changed for one check.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", tag = "change")]
pub enum Change {
    /// The verdict differs.
    Verdict {
        /// Check id.
        id: String,
        /// Endpoint in the old and the new report.
        endpoints: (String, String),
        /// Old and new verdict.
        verdicts: (Verdict, Verdict),
        /// Old and new reason.
        reasons: (String, String),
    },
    /// Same verdict, different evidence (reason or evidence lines, volatile details masked).
    Evidence {
        /// Check id.
        id: String,
        /// Endpoint in the old and the new report.
        endpoints: (String, String),
        /// The verdict both share.
        verdict: Verdict,
        /// Old and new reason.
        reasons: (String, String),
        /// Evidence lines only the old report has, and only the new one.
        evidence: (Vec<String>, Vec<String>),
    },
    /// Only the old report has this check.
    Removed {
        /// Check id.
        id: String,
        /// Its endpoint.
        endpoint: String,
        /// Its verdict there.
        verdict: Verdict,
    },
    /// Only the new report has this check.
    Added {
        /// Check id.
        id: String,
        /// Its endpoint.
        endpoint: String,
        /// Its verdict there.
        verdict: Verdict,
    },
}

/// The comparison of two reports.
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    /// Run ids, old and new.
    pub runs: (String, String),
    /// Overall verdicts, old and new.
    pub verdicts: (Verdict, Verdict),
    /// Checks present in both.
    pub compared: usize,
    /// What changed, in the new report's order.
    pub changes: Vec<Change>,
}

impl Diff {
    /// Whether anything changed.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.verdicts.0 == self.verdicts.1
    }
}

/// Compares `old` and `new`. Checks are paired by id; where an id occurs more than once (one per
/// replica), occurrences are paired by endpoint name when both reports have it, else in order:
/// pod names change across a restart, and a migration restarts them.
pub fn compare(old: &Report, new: &Report) -> Diff {
    let group = |r: &Report| {
        let mut by_id: BTreeMap<String, Vec<CheckResult>> = BTreeMap::new();
        for c in &r.checks {
            by_id.entry(c.id.clone()).or_default().push(c.clone());
        }
        by_id
    };
    let (mut old_by_id, new_by_id) = (group(old), group(new));
    let mut changes = Vec::new();
    let mut compared = 0;
    let mut seen_new = Vec::new();
    for c in &new.checks {
        if seen_new.contains(&c.id) {
            continue;
        }
        seen_new.push(c.id.clone());
        let news = &new_by_id[&c.id];
        let mut olds = old_by_id.remove(&c.id).unwrap_or_default();
        for n in news {
            let at = olds
                .iter()
                .position(|o| o.endpoint == n.endpoint)
                .or(if olds.is_empty() { None } else { Some(0) });
            match at.map(|i| olds.remove(i)) {
                Some(o) => {
                    compared += 1;
                    changes.extend(change(&o, n));
                }
                None => changes.push(Change::Added {
                    id: n.id.clone(),
                    endpoint: n.endpoint.clone(),
                    verdict: n.verdict,
                }),
            }
        }
        for o in olds {
            changes.push(removed(&o));
        }
    }
    for o in old_by_id.into_values().flatten() {
        changes.push(removed(&o));
    }
    Diff {
        runs: (old.run.id.clone(), new.run.id.clone()),
        verdicts: (old.summary.verdict, new.summary.verdict),
        compared,
        changes,
    }
}

fn removed(o: &CheckResult) -> Change {
    Change::Removed {
        id: o.id.clone(),
        endpoint: o.endpoint.clone(),
        verdict: o.verdict,
    }
}

fn change(o: &CheckResult, n: &CheckResult) -> Option<Change> {
    let endpoints = (o.endpoint.clone(), n.endpoint.clone());
    let reasons = (o.reason.clone(), n.reason.clone());
    if o.verdict != n.verdict {
        return Some(Change::Verdict {
            id: n.id.clone(),
            endpoints,
            verdicts: (o.verdict, n.verdict),
            reasons,
        });
    }
    let masked = |lines: &[String]| -> Vec<String> { lines.iter().map(|l| mask(l)).collect() };
    let (oe, ne) = (masked(&o.evidence), masked(&n.evidence));
    let only_old: Vec<String> = oe.iter().filter(|l| !ne.contains(l)).cloned().collect();
    let only_new: Vec<String> = ne.iter().filter(|l| !oe.contains(l)).cloned().collect();
    if mask(&o.reason) == mask(&n.reason) && only_old.is_empty() && only_new.is_empty() {
        return None;
    }
    Some(Change::Evidence {
        id: n.id.clone(),
        endpoints,
        verdict: n.verdict,
        reasons,
        evidence: (only_old, only_new),
    })
}

/// Timestamps inside words and log lines: RFC 3339 (`time="2026-12-02T15:02:28.96Z"`, JSON
/// `"time":"..."`), grpc-go's `2026/11/24 19:25:05`, and Unix times (`1796223749`).
fn volatile_times() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(concat!(
            r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?",
            r"|\d{4}/\d{2}/\d{2}( \d{2}:\d{2}:\d{2}(\.\d+)?)?",
            r"|\b\d{9,}\b",
        ))
        .expect("a valid pattern")
    })
}

/// The ids [`crate::checks::unregistered_alpn`] draws: `amv-` and eight hex digits.
fn seeded_ids() -> &'static regex::Regex {
    static IDS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\bamv-[0-9a-f]{8}\b").expect("a valid pattern")
    });
    &IDS
}

/// Masks what differs on every run: a number before a time unit, a port after a host, a
/// timestamp (RFC 3339, grpc-go's, Unix seconds) wherever it stands, a long hex run
/// (fingerprints, serials), the endpoint's own address, the ALPN id drawn from the seed.
pub fn mask(text: &str) -> String {
    let text = volatile_times().replace_all(text, "TIME");
    // The ALPN id no registry holds, drawn from each run's seed (also where a log quotes it).
    let text = seeded_ids().replace_all(&text, "amv-SEEDED");
    let words: Vec<&str> = text.split(' ').collect();
    let mut out = Vec::with_capacity(words.len());
    for (i, w) in words.iter().enumerate() {
        let next = words.get(i + 1).copied().unwrap_or("");
        let unit = ["µs", "ms", "s", "µs,", "ms,", "ms)", "µs)", "ms;", "µs;"].contains(&next)
            || next.starts_with("µs")
            || next.starts_with("ms")
            || next.starts_with("second")
            // A log read whole grows between runs of a server that keeps running: how many lines
            // were searched and how often each refusal cause was logged are not the server's
            // change (which causes were logged still is).
            || ["lines", "refused", "×"].contains(&next);
        let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.');
        let core = w.trim_matches(['(', ')', ',']);
        let masked = if unit && numeric(core) {
            w.replacen(core, "N", 1)
        } else {
            mask_word(w)
        };
        out.push(masked);
    }
    out.join(" ")
}

fn mask_word(w: &str) -> String {
    let trimmed = w.trim_matches(|c: char| "()[]`'\",;".contains(c));
    // Fingerprints and serials: long hex (with or without colons).
    let hex: String = trimmed.chars().filter(|c| *c != ':').collect();
    if hex.len() >= 16 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return w.replace(trimmed, "HEX");
    }
    // RFC 3339 timestamps.
    if trimmed.len() >= 20
        && trimmed.as_bytes()[4] == b'-'
        && trimmed.contains('T')
        && trimmed.chars().next().is_some_and(|c| c.is_ascii_digit())
    {
        return w.replace(trimmed, "TIME");
    }
    mask_ports(w)
}

/// `host:4711`, `[::1]:4711`, `http://127.0.0.1:4711/healthz`: the port becomes `PORT`.
fn mask_ports(w: &str) -> String {
    let chars: Vec<char> = w.chars().collect();
    let mut out = String::with_capacity(w.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        out.push(c);
        let host_before = i > 0 && (chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == ']');
        if c == ':' && host_before {
            let digits = chars[i + 1..]
                .iter()
                .take_while(|d| d.is_ascii_digit())
                .count();
            let after = chars.get(i + 1 + digits).copied();
            if (1..=5).contains(&digits) && !matches!(after, Some(':') | Some('.')) {
                out.push_str("PORT");
                i += 1 + digits;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// The comparison as text.
pub fn render_text(d: &Diff) -> String {
    let word = super::console::verdict_word;
    let mut out = format!(
        "comparing run {} -> {}: {} checks in both; run verdict {} -> {}\n",
        d.runs.0,
        d.runs.1,
        d.compared,
        word(d.verdicts.0),
        word(d.verdicts.1)
    );
    for c in &d.changes {
        match c {
            Change::Verdict {
                id,
                endpoints,
                verdicts,
                reasons,
            } => out.push_str(&format!(
                "verdict  {id} [{} -> {}]: {} -> {}\n  was: {}\n  now: {}\n",
                endpoints.0, endpoints.1, verdicts.0, verdicts.1, reasons.0, reasons.1
            )),
            Change::Evidence {
                id,
                endpoints,
                verdict,
                reasons,
                evidence,
            } => {
                out.push_str(&format!(
                    "evidence {id} [{} -> {}] ({} both times)\n",
                    endpoints.0, endpoints.1, verdict
                ));
                if mask(&reasons.0) != mask(&reasons.1) {
                    out.push_str(&format!("  was: {}\n  now: {}\n", reasons.0, reasons.1));
                }
                for l in &evidence.0 {
                    out.push_str(&format!("  - {l}\n"));
                }
                for l in &evidence.1 {
                    out.push_str(&format!("  + {l}\n"));
                }
            }
            Change::Removed {
                id,
                endpoint,
                verdict,
            } => out.push_str(&format!("removed  {id} [{endpoint}] (was {})\n", verdict)),
            Change::Added {
                id,
                endpoint,
                verdict,
            } => out.push_str(&format!("added    {id} [{endpoint}] ({})\n", verdict)),
        }
    }
    out.push_str(&format!(
        "{} change(s)\n",
        d.changes.len() + usize::from(d.verdicts.0 != d.verdicts.1 && d.changes.is_empty())
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volatile_details_are_masked_and_meaningful_ones_kept() {
        let cases = [
            ("SERVING in 1234 µs", "SERVING in N µs"),
            (
                "TCP connect to 127.0.0.1:4711 failed",
                "TCP connect to 127.0.0.1:PORT failed",
            ),
            (
                "ServerHandshake(\"[::1]:4711\") failed",
                "ServerHandshake(\"[::1]:PORT\") failed",
            ),
            ("sha256 AB:CD:EF:01:23:45:67:89:AB:CD", "sha256 HEX"),
            ("at 2026-11-24T21:58:16Z", "at TIME"),
            // Inside log lines: logrus text and JSON, grpc-go, Go's x509 errors.
            (
                "line: time=\"2026-12-02T15:02:28.964926065Z\" level=info msg=\"mTLS enabled\"",
                "line: time=\"TIME\" level=info msg=\"mTLS enabled\"",
            ),
            (
                "{\"level\":\"info\",\"time\":\"2026-12-02T15:02:28+01:00\"}",
                "{\"level\":\"info\",\"time\":\"TIME\"}",
            ),
            (
                "2026/11/24 19:25:05 INFO: [core] [Server #1] grpc: Server.Serve failed",
                "TIME INFO: [core] [Server #1] grpc: Server.Serve failed",
            ),
            (
                "verification time 1796223749 (UNIX), but certificate is not valid after 1796137348 (86401 seconds ago)",
                "verification time TIME (UNIX), but certificate is not valid after TIME (N seconds ago)",
            ),
            ("HTTP status 400", "HTTP status 400"),
            (
                "searched 139 lines of /tmp/x/repo-server.log",
                "searched N lines of /tmp/x/repo-server.log",
            ),
            (
                "70 refused handshakes logged (this run caused 66)",
                "N refused handshakes logged (this run caused 66)",
            ),
            ("7 × `tls: bad certificate`", "N × `tls: bad certificate`"),
            ("alert `unknown_ca`", "alert `unknown_ca`"),
            ("tls1.3 negotiated", "tls1.3 negotiated"),
            (
                "http://127.0.0.1:35783/healthz answered 200",
                "http://127.0.0.1:PORT/healthz answered 200",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(mask(text), want, "{text}");
        }
    }
}
