//! SIGINT (Ctrl-C) and SIGTERM (what a CI cancels with), caught from the first instruction of
//! `main` to the last. A signal never kills a run without a report and never goes unnoticed: the
//! phase under way is dropped, what was judged so far is written as an incomplete report, and
//! the exit code is 2. A signal that arrives while the command line is still being resolved
//! stops the run as soon as it has a place to write its report.

use std::sync::OnceLock;

use tokio::sync::watch;

/// Which signal stopped the run, once one has arrived.
static STOP: OnceLock<watch::Receiver<Option<&'static str>>> = OnceLock::new();

/// Starts listening for SIGINT and SIGTERM. Call once, inside the runtime, before anything else.
pub(crate) fn install() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let which = tokio::select! {
            _ = interrupt.recv() => "interrupted (Ctrl-C)",
            _ = terminate.recv() => "terminated (SIGTERM)",
        };
        let _ = tx.send(Some(which));
        // Keep both handlers installed: a second signal while the report is written must not
        // kill the process with the default action.
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
    });
    let _ = STOP.set(rx);
    Ok(())
}

/// Resolves when a signal has arrived (at once if one already has), with its description.
pub(crate) async fn requested() -> &'static str {
    match STOP.get() {
        Some(rx) => {
            let mut rx = rx.clone();
            match rx.wait_for(Option::is_some).await {
                Ok(which) => which.unwrap_or("stopped"),
                Err(_) => std::future::pending().await,
            }
        }
        None => std::future::pending().await,
    }
}
