//! Entry point: installs the crypto provider, parses the command line, dispatches, and maps the
//! outcome onto the exit codes CI relies on (0 pass, 1 fail, 2 no verdict).

mod cli;
mod commands;
mod plan;
mod stop;

use std::process::ExitCode;

use anyhow::Context;

use argocd_mtls_verify::pki::{self, InitOptions};
use argocd_mtls_verify::report::console;
use cli::{Command, PkiCommand};

/// Exit status for "no verdict": bad input, setup failure, inconclusive.
const EXIT_NO_VERDICT: u8 = 2;

fn main() -> ExitCode {
    argocd_mtls_verify::install_crypto_provider();
    let cli = cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_NO_VERDICT);
        }
    };
    // A run or demo listens for SIGINT and SIGTERM before anything else it does, so a signal at
    // any moment ends in its incomplete report (the other commands keep the default action).
    if matches!(cli.command, Command::Run(_) | Command::Demo(_))
        && let Err(e) = runtime.block_on(async { stop::install() })
    {
        eprintln!("error: cannot listen for signals: {e}");
        return ExitCode::from(EXIT_NO_VERDICT);
    }
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", error_text(&err));
            ExitCode::from(EXIT_NO_VERDICT)
        }
    }
}

/// An error and its causes in one line. Many of our errors already quote their cause (`{path}:
/// {source}`), so a cause whose words are already there is not repeated.
pub(crate) fn error_text(err: &anyhow::Error) -> String {
    argocd_mtls_verify::error_chain(&**err)
}

fn init_logging(verbose: u8) {
    // The Kubernetes client logs each failed request at ERROR; the run names every failure itself,
    // in one sentence, so its lines only repeat it (RUST_LOG still shows them).
    let default = match verbose {
        0 => "warn,kube_client=off",
        1 => "argocd_mtls_verify=debug,info",
        _ => "argocd_mtls_verify=trace,debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colour(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .init();
}

/// Colour only on a terminal, and never when `NO_COLOR` is set to anything (no-color.org).
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => commands::run(*args).await,
        Command::Demo(args) => commands::demo(args).await,
        Command::List(args) => commands::list(args),
        Command::Diff(args) => commands::diff(args),
        Command::Aggregate(args) => commands::aggregate(args),
        Command::Intrude(args) => commands::intrude(args).await,
        Command::Pki(PkiCommand::Init(args)) => {
            let opts = InitOptions {
                layout: args.layout.into(),
                days: args.days,
                namespace: args.namespace,
                key_type: args.key_type.into(),
            };
            let bundle = pki::generate(&opts)?;
            let written = pki::write_bundle(&args.out, &bundle, args.force)?;
            let mut out = format!("wrote {} files to {}:\n", written.len(), args.out.display());
            for path in &written {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let secret = bundle.files.iter().any(|f| f.name == name && f.secret);
                out.push_str(&format!(
                    "  {name}{}\n",
                    if secret { "  (0600)" } else { "" }
                ));
            }
            out.push_str(&pki::next_steps(
                opts.layout,
                &opts.namespace,
                &args.out.display().to_string(),
            ));
            console::print(&out);
            Ok(ExitCode::SUCCESS)
        }
        Command::Pki(PkiCommand::Inspect(args)) => {
            let inspections = args
                .files
                .iter()
                .map(|p| pki::inspect::inspect(p))
                .collect::<Result<Vec<_>, _>>()?;
            if args.json {
                let json = serde_json::to_string_pretty(&inspections)
                    .context("serializing the inspection")?;
                console::print(&format!("{json}\n"));
            } else {
                console::print(&pki::inspect::render_text(&inspections));
            }
            // An inconsistent bundle (a key that is not its certificate's, a leaf that does not
            // chain) is unusable input, as `run` says too: one rule, exit 2.
            Ok(if inspections.iter().all(|i| i.ok()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_NO_VERDICT)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    /// Colour on a terminal only, and never with NO_COLOR set to something.
    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(super::colour(true, None));
        assert!(super::colour(true, Some(OsStr::new(""))));
        assert!(!super::colour(true, Some(OsStr::new("1"))));
        assert!(!super::colour(false, None));
    }

    /// A cause the message already quotes is said once; one it does not is appended.
    #[test]
    fn error_text_says_each_cause_once() {
        let quoted = argocd_mtls_verify::pki::PkiError::Io {
            path: "/nonexistent".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let err = anyhow::Error::from(quoted).context("--pki");
        let text = super::error_text(&err);
        assert_eq!(text.matches("entity not found").count(), 1, "{text}");
        assert!(text.starts_with("--pki: /nonexistent: "), "{text}");
        let plain = anyhow::anyhow!("inner cause").context("outer");
        assert_eq!(super::error_text(&plain), "outer: inner cause");
    }
}
