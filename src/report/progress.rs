//! The console's progress lines on stderr, as a reporter of the run's events: phases as
//! `== name`, notes and problems indented under them, one line per endpoint probed, and each
//! check that did not pass as soon as it is judged. The final table on stdout is rendered from
//! the report ([`super::console`]), never from these lines.

use std::io::Write;

use super::Verdict;
use crate::runner::events::{Event, Reporter};

/// Writes progress to stderr.
#[derive(Debug, Default)]
pub struct ConsoleProgress;

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
        Event::CheckJudged(r) => match r.verdict {
            Verdict::Fail | Verdict::Error => format!(
                "  {} {} [{}]",
                super::console::verdict_word(r.verdict),
                r.id,
                r.endpoint
            ),
            Verdict::Pass | Verdict::Skip => return None,
        },
    })
}

impl Reporter for ConsoleProgress {
    fn report(&mut self, event: &Event<'_>) {
        if let Some(line) = line(event) {
            // A closed stderr must not stop a run that can still write its report.
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }
}
