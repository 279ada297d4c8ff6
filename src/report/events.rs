//! What a run says while it runs, as events: a phase started or finished, a note inside a phase,
//! a problem the user must act on, an endpoint probed, a check judged. The runner only emits;
//! reporters consume (cargo-nextest's model: the event types live here, with the reporters, and
//! the runner imports them). The console's progress lines ([`super::progress`]) are one reporter; the report's phase timings are recorded from
//! the same `PhaseFinished` events, so the two cannot disagree.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{CheckResult, Phase};

/// One thing that happened during a run.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A phase (`install`, `baseline`, `provision`, `restart`, `verify`, `probe`, ...) began.
    PhaseStarted {
        /// The phase.
        name: &'a str,
    },
    /// A phase ended after `ms` milliseconds; the report lists it under `run.phases`.
    PhaseFinished {
        /// The phase.
        name: &'a str,
        /// How long it took.
        ms: f64,
    },
    /// Progress inside a phase ("applied 40 of 61 objects", "restarted Deployment/...").
    Note(&'a str),
    /// Something went wrong that the user must know or act on (a failed clean-up step, an
    /// interrupted run). The run goes on, or stops with a partial report.
    Problem(&'a str),
    /// Probing of one endpoint began.
    EndpointStarted {
        /// The endpoint's label (a pod name, or `endpoint`).
        label: &'a str,
        /// Where it is reached.
        addr: SocketAddr,
        /// How many checks are judged on it.
        checks: usize,
    },
    /// Handshake attempts at one endpoint: `done` of `planned` so far (the plan grows once the
    /// server's certificate has named the doors to try).
    Attempts {
        /// The endpoint's label.
        label: &'a str,
        /// Attempts finished.
        done: usize,
        /// Attempts planned so far.
        planned: usize,
    },
    /// Every probe of one endpoint ran.
    EndpointObserved {
        /// The endpoint's label.
        label: &'a str,
        /// How long observing took.
        ms: f64,
    },
    /// One check was judged on one endpoint (or Kubernetes scope).
    CheckJudged(&'a CheckResult),
}

/// Consumes events (the console's progress lines, a test's recorder, ...).
pub trait Reporter: Send {
    /// Called for each event, in the order they happen.
    fn report(&mut self, event: &Event<'_>);
}

/// Where a run's events go: every reporter, in order. Cloning shares the same reporters, so a
/// phase's helpers (apply, rollout waits) can emit notes too.
#[derive(Clone, Default)]
pub struct Events {
    reporters: Arc<Mutex<Vec<Box<dyn Reporter>>>>,
    phases: Arc<Mutex<Vec<Phase>>>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("phases", &self.phases())
            .finish_non_exhaustive()
    }
}

impl Events {
    /// Events that go to `reporters`.
    pub fn to(reporters: Vec<Box<dyn Reporter>>) -> Self {
        Events {
            reporters: Arc::new(Mutex::new(reporters)),
            phases: Arc::default(),
        }
    }

    /// Events no reporter consumes (phases are still recorded).
    pub fn silent() -> Self {
        Self::default()
    }

    /// Sends `event` to every reporter.
    pub fn emit(&self, event: Event<'_>) {
        if let Event::PhaseFinished { name, ms } = event {
            self.phases.lock().expect("not poisoned").push(Phase {
                name: name.to_owned(),
                ms,
            });
        }
        for reporter in self.reporters.lock().expect("not poisoned").iter_mut() {
            reporter.report(&event);
        }
    }

    /// A note inside the current phase.
    pub fn note(&self, message: &str) {
        self.emit(Event::Note(message));
    }

    /// A problem the user must know of.
    pub fn problem(&self, message: &str) {
        self.emit(Event::Problem(message));
    }

    /// Starts phase `name`; it finishes when the returned guard is dropped, however the phase
    /// ends (done, an early return, an error, a stop), so the report lists every phase begun.
    #[must_use = "the phase finishes when the guard is dropped"]
    pub fn phase(&self, name: &'static str) -> PhaseGuard {
        self.emit(Event::PhaseStarted { name });
        PhaseGuard {
            events: self.clone(),
            name,
            started: Instant::now(),
        }
    }

    /// Records phase `name`, begun at `started` without being announced (the setup measured
    /// before the first progress line).
    pub fn finish(&self, name: &str, started: Instant) {
        self.emit(Event::PhaseFinished {
            name,
            ms: started.elapsed().as_secs_f64() * 1000.0,
        });
    }

    /// The phases finished so far, in order, as the report lists them.
    pub fn phases(&self) -> Vec<Phase> {
        self.phases.lock().expect("not poisoned").clone()
    }

    /// A `FnMut(&str)` that turns a helper's progress messages into notes.
    pub fn notes(&self) -> impl FnMut(&str) + Send + 'static {
        let events = self.clone();
        move |message| events.note(message)
    }
}

/// A phase in progress ([`Events::phase`]): dropping it emits [`Event::PhaseFinished`].
#[derive(Debug)]
pub struct PhaseGuard {
    events: Events,
    name: &'static str,
    started: Instant,
}

impl Drop for PhaseGuard {
    fn drop(&mut self) {
        self.events.emit(Event::PhaseFinished {
            name: self.name,
            ms: self.started.elapsed().as_secs_f64() * 1000.0,
        });
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Records what it is sent, as text, for assertions.
    #[derive(Clone, Default)]
    pub(crate) struct Recorder(pub Arc<Mutex<Vec<String>>>);

    impl Reporter for Recorder {
        fn report(&mut self, event: &Event<'_>) {
            let line = match event {
                Event::PhaseStarted { name } => format!("start {name}"),
                Event::PhaseFinished { name, .. } => format!("finish {name}"),
                Event::Note(m) => format!("note {m}"),
                Event::Problem(m) => format!("problem {m}"),
                Event::EndpointStarted { label, checks, .. } => {
                    format!("endpoint {label} {checks}")
                }
                Event::EndpointObserved { label, .. } => format!("observed {label}"),
                Event::Attempts {
                    label,
                    done,
                    planned,
                } => format!("attempts {label} {done}/{planned}"),
                Event::CheckJudged(r) => format!("judged {} {}", r.id, r.verdict),
            };
            self.0.lock().unwrap().push(line);
        }
    }

    /// Every reporter gets every event in order; finished phases are what the report lists.
    #[test]
    fn reporters_see_events_in_order_and_phases_are_recorded() {
        let (a, b) = (Recorder::default(), Recorder::default());
        let events = Events::to(vec![Box::new(a.clone()), Box::new(b.clone())]);
        let install = events.phase("install");
        events.note("applied 3 objects");
        let mut from_helper = events.notes();
        from_helper("Deployment/argocd-repo-server is available");
        drop(install);
        events.problem("could not delete secrets/x");
        let expected = [
            "start install",
            "note applied 3 objects",
            "note Deployment/argocd-repo-server is available",
            "finish install",
            "problem could not delete secrets/x",
        ];
        assert_eq!(*a.0.lock().unwrap(), expected);
        assert_eq!(*b.0.lock().unwrap(), expected);
        let phases = events.phases();
        assert_eq!(phases.len(), 1);
        assert_eq!(phases[0].name, "install");
        assert!(Events::silent().phases().is_empty());
    }

    /// A phase left early (an early return, `?`) is finished all the same: a stopped
    /// `--keep-cluster` run's "clean up" phase is in the report.
    #[test]
    fn a_phase_left_early_is_finished() {
        fn clean_up(events: &Events, keep: bool) -> Result<(), String> {
            let _phase = events.phase("clean up");
            if keep {
                events.note("kept");
                return Ok(());
            }
            Err("delete failed".to_owned())?;
            unreachable!()
        }
        for keep in [true, false] {
            let events = Events::silent();
            let _ = clean_up(&events, keep);
            let names: Vec<String> = events.phases().into_iter().map(|p| p.name).collect();
            assert_eq!(names, ["clean up"], "keep={keep}");
        }
    }
}
