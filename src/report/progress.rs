//! The console's progress lines on stderr, as a reporter of the run's events: phases as
//! `== name`, notes and problems indented under them, one line per endpoint probed, the
//! handshake attempts done of those planned (a progress bar on a terminal, a line every few
//! seconds otherwise), and each check that did not pass as soon as it is judged (an advisory
//! one as advisory). The final table on stdout is rendered from the report
//! ([`super::console`]), never from these lines.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::Verdict;
use crate::report::events::{Event, Reporter};
use crate::suite::Severity;

/// How often a plain (not a terminal) stderr gets an attempts line.
const PLAIN_EVERY: Duration = Duration::from_secs(2);

/// Writes progress to stderr.
#[derive(Debug, Default)]
pub struct ConsoleProgress {
    /// The attempts bar, on a terminal.
    bar: Option<indicatif::ProgressBar>,
    /// When the last plain attempts line was written.
    last_line: Option<Instant>,
}

impl ConsoleProgress {
    fn attempts(&mut self, label: &str, done: usize, planned: usize) {
        if std::io::stderr().is_terminal() {
            let bar = self.bar.get_or_insert_with(|| {
                let bar = indicatif::ProgressBar::new(planned as u64);
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "  {prefix} [{bar:30}] {pos}/{len} attempts ({elapsed})",
                ) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_prefix(label.to_owned());
                bar
            });
            bar.set_length(planned as u64);
            bar.set_position(done as u64);
            return;
        }
        let due = self.last_line.is_none_or(|t| t.elapsed() >= PLAIN_EVERY);
        if due || done == planned {
            self.last_line = Some(Instant::now());
            let _ = writeln!(
                std::io::stderr().lock(),
                "  {label}: {done}/{planned} attempts"
            );
        }
    }
}

/// The progress line for `event`, if it gets one.
pub fn line(event: &Event<'_>) -> Option<String> {
    Some(match event {
        Event::PhaseStarted { name } => format!("== {name}"),
        Event::PhaseFinished { .. } => return None,
        Event::Note(message) | Event::Problem(message) => format!("  {message}"),
        Event::EndpointStarted {
            label,
            addr,
            checks,
        } => format!("probing {label} ({addr}) with {checks} checks ..."),
        Event::EndpointObserved { ms, .. } => format!("  observed in {ms:.0} ms"),
        Event::Attempts { .. } => return None,
        Event::CheckJudged(r) => match (r.verdict, r.severity) {
            (Verdict::Fail, Severity::Advisory) => format!(
                "  ADVISORY {} [{}] (does not fail the run)",
                r.id, r.endpoint
            ),
            (Verdict::Fail | Verdict::Error, _) => format!(
                "  {} {} [{}]",
                super::console::verdict_word(r.verdict),
                r.id,
                r.endpoint
            ),
            (Verdict::Pass | Verdict::Skip, _) => return None,
        },
    })
}

impl Reporter for ConsoleProgress {
    fn report(&mut self, event: &Event<'_>) {
        match event {
            Event::Attempts {
                label,
                done,
                planned,
            } => self.attempts(label, *done, *planned),
            Event::EndpointObserved { .. } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                self.last_line = None;
            }
            _ => {}
        }
        if let Some(line) = line(event) {
            // A closed stderr must not stop a run that can still write its report.
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }
}
