//! The repo-server's own word: its health endpoints, the log lines it prints when mTLS is on, and
//! the lines grpc-go prints for each refused handshake.

use super::judgement::Judgement;
use super::observe::Observations;
use crate::endpoint::{Endpoint, grpc_refusal_lines, logrus_message};
use crate::probe::Outcome;
use crate::report::{Observed, Verdict};

/// `probe/*`: `GET path` on the health port answers 200.
pub(super) fn judge_http(endpoint: &Endpoint, obs: &Observations, path: &str) -> Judgement {
    match (&endpoint.health, obs.http.get(path)) {
        (None, _) => Judgement::not_judged("no health endpoint given (--health-url)"),
        (Some(_), Some(Ok(a))) if a.status == 200 => Judgement::new(
            Verdict::Pass,
            format!("{} answered 200 in {} µs", a.url, a.us),
        )
        .observed(Observed::Http(a.clone())),
        (Some(_), Some(Ok(a))) => Judgement::new(
            Verdict::Fail,
            format!("{} answered {}: {}", a.url, a.status, a.body),
        )
        .observed(Observed::Http(a.clone())),
        (Some(_), Some(Err(e))) => Judgement::new(Verdict::Error, format!("inconclusive: {e}")),
        (Some(_), None) => Judgement::new(Verdict::Error, "the probe was not run"),
    }
}

/// The log lines, or the judgement that stands when there are none to read.
pub(super) fn log_lines<'a>(
    endpoint: &'a Endpoint,
    obs: &'a Observations,
) -> Result<(&'a [String], String), Box<Judgement>> {
    match (&endpoint.logs, &obs.logs) {
        (None, _) | (_, None) => Err(Box::new(Judgement::not_judged(
            "no repo-server log given (--log-file)",
        ))),
        (Some(_), Some(Err(e))) => Err(Box::new(Judgement::new(
            Verdict::Error,
            format!("could not read the log: {e}"),
        ))),
        // Zero lines prove nothing either way: an empty capture (`kubectl logs` of a pod that
        // just started, a redirect that wrote nothing) is not a server that stayed silent.
        (Some(src), Some(Ok(lines))) if lines.is_empty() => Err(Box::new(Judgement::new(
            Verdict::Error,
            format!(
                "{} is empty: no line to search, so no evidence either way (give the repo-server's whole log)",
                src.origin()
            ),
        ))),
        (Some(src), Some(Ok(lines))) => Ok((lines.as_slice(), src.origin())),
    }
}

pub(super) fn judge_log(prefix: &str, lines: &[String], origin: &str) -> Judgement {
    let found = lines.iter().find_map(|l| {
        logrus_message(l)
            .filter(|m| m.starts_with(prefix))
            .map(|m| (l, m))
    });
    let evidence = vec![format!("searched {} lines of {origin}", lines.len())];
    match found {
        Some((line, msg)) => {
            let rest = &msg[prefix.len()..];
            // For the health-check line, record the CN actually printed (Argo CD 3.5.1 prints it empty).
            let value = rest.strip_suffix(')').unwrap_or(rest).to_owned();
            let printed = if value.is_empty() {
                "found; the value after the prefix is empty (Argo CD 3.5.1's health-check certificate has no CommonName)".to_owned()
            } else {
                format!("found; value printed: `{value}`")
            };
            let mut evidence = evidence;
            evidence.push(format!("line: {line}"));
            Judgement::new(Verdict::Pass, printed)
                .observed(Observed::LogLine {
                    line: line.clone(),
                    value: value.clone(),
                })
                .evidence(evidence)
        }
        None => Judgement::new(
            Verdict::Fail,
            format!("no log line starting `{prefix}` in {origin}: the repo-server did not report this at startup"),
        )
        .observed(Observed::LogSearched { lines: lines.len() })
        .evidence(evidence),
    }
}

/// grpc-go (v1.81, in Argo CD 3.5.1) logs one `ServerHandshake(...) failed: <cause>` line per
/// refused handshake, and only at INFO: passes when the refusals this run caused left lines.
/// `configured_grpc_log_level`: what the pod spec sets (`Some(None)`: unset), when the log comes
/// from a pod; `None` when unknown (a file, a bare endpoint).
pub(super) fn judge_rejections_logged(
    obs: &Observations,
    lines: &[String],
    origin: &str,
    configured_grpc_log_level: Option<Option<&str>>,
) -> Judgement {
    let refused = obs
        .handshakes
        .values()
        .filter(|o| o.outcome == Outcome::Rejected)
        .count();
    let logged = grpc_refusal_lines(lines);
    let mut causes: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in &logged {
        *causes.entry(r.cause.as_str()).or_default() += 1;
    }
    let mut evidence = vec![format!(
        "searched {} lines of {origin}; this run saw {refused} refused attempts",
        lines.len()
    )];
    evidence.extend(causes.iter().map(|(c, n)| format!("{n} × `{c}`")));
    let observed = Observed::LoggedRefusals {
        refused_attempts: refused,
        logged_refusals: logged.len(),
        causes: causes.iter().map(|(c, n)| ((*c).to_owned(), *n)).collect(),
    };
    if refused == 0 {
        return Judgement::not_applicable(
            "the server refused no attempt of this run, so there was nothing to log",
        )
        .observed(observed)
        .evidence(evidence);
    }
    if logged.is_empty() {
        let setting = match configured_grpc_log_level {
            Some(Some(level)) if level.eq_ignore_ascii_case("info") => {
                "although GRPC_GO_LOG_SEVERITY_LEVEL=info is set on the repo-server".to_owned()
            }
            Some(Some(level)) => format!(
                "the repo-server sets GRPC_GO_LOG_SEVERITY_LEVEL={level}; grpc-go logs refused handshakes only at info (warning is not enough)"
            ),
            Some(None) => "GRPC_GO_LOG_SEVERITY_LEVEL is not set on the repo-server; grpc-go logs refused handshakes only at info (--grpc-log-info sets it)".to_owned(),
            None => "grpc-go logs refused handshakes only with GRPC_GO_LOG_SEVERITY_LEVEL=info on the repo-server (warning is not enough)".to_owned(),
        };
        return Judgement::new(
            Verdict::Fail,
            format!("the server refused {refused} attempts and logged none: {setting}"),
        )
        .observed(observed)
        .evidence(evidence);
    }
    Judgement::new(
        Verdict::Pass,
        format!(
            "{} refused handshakes logged (this run caused {refused})",
            logged.len()
        ),
    )
    .observed(observed)
    .evidence(evidence)
}
