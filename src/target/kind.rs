//! The kind target's preflight: kind and a running container runtime must be present before
//! anything is created. Fails fast, naming what is missing and how to get it.

use std::process::Command;
use std::time::Duration;

use serde::Serialize;

/// Tools found on this machine, with versions, recorded in the report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Toolchain {
    /// `kind version` output.
    pub kind: String,
    /// Container runtime name and version.
    pub runtime: String,
}

/// Why the kind target cannot run here.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PreflightError {
    /// The kind binary is not on PATH.
    #[error(
        "`kind` is not on PATH: install it (https://kind.sigs.k8s.io/docs/user/quick-start/#installation); or verify an existing install with --target endpoint through a port-forward"
    )]
    NoKind,
    /// No container runtime binary.
    #[error(
        "no container runtime: `{0}` is not on PATH; kind needs Docker (or Podman with KIND_EXPERIMENTAL_PROVIDER=podman)"
    )]
    NoRuntime(String),
    /// The runtime binary exists but its engine does not answer.
    #[error(
        "`{runtime} info` failed: the container engine is not running or not reachable ({detail}); start it, or verify an existing install with --target endpoint through a port-forward"
    )]
    RuntimeDown {
        /// Runtime binary.
        runtime: String,
        /// What it said.
        detail: String,
    },
}

fn run(program: &str, args: &[&str]) -> Option<Result<String, String>> {
    let mut child = Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    // Bounded: a hung engine must not hang the preflight.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            _ => {
                let _ = child.kill();
                return Some(Err(format!(
                    "`{program} {}` did not answer within 15 s",
                    args.join(" ")
                )));
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_owned();
    Some(if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(text(&out.stderr)
            .lines()
            .last()
            .unwrap_or("failed")
            .to_owned())
    })
}

/// Checks for kind and a running container runtime.
pub fn preflight() -> Result<Toolchain, PreflightError> {
    let runtime = match std::env::var("KIND_EXPERIMENTAL_PROVIDER").as_deref() {
        Ok("podman") => "podman",
        Ok("nerdctl") => "nerdctl",
        _ => "docker",
    };
    let kind = match run("kind", &["version"]) {
        None => return Err(PreflightError::NoKind),
        Some(Ok(v)) => v,
        Some(Err(e)) => format!("kind (version unknown: {e})"),
    };
    match run(runtime, &["info", "--format", "{{.ServerVersion}}"]) {
        None => Err(PreflightError::NoRuntime(runtime.to_owned())),
        Some(Err(detail)) => Err(PreflightError::RuntimeDown {
            runtime: runtime.to_owned(),
            detail,
        }),
        Some(Ok(version)) => Ok(Toolchain {
            kind,
            runtime: format!("{runtime} {version}"),
        }),
    }
}
