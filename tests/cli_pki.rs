//! `pki init` and `pki inspect` as a new user runs them: output, exit codes, file modes, and an
//! error that names the file at fault for every kind of bad input.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use common::{bin, openssl_ok};

fn run(args: &[&str]) -> Output {
    std::process::Command::new(bin())
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn init(dir: &Path) {
    let out = run(&["pki", "init", "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn init_then_inspect_works_and_second_init_is_refused() {
    let tmp = common::tempdir();
    let dir = tmp.path().join("bundle");
    init(&dir);
    for (file, mode) in [
        ("ca.crt", 0o644),
        ("ca.key", 0o600),
        ("server.crt", 0o644),
        ("server.key", 0o600),
        ("client.crt", 0o644),
        ("client.key", 0o600),
        ("argocd-repo-server-mtls.yaml", 0o600),
        ("argocd-repo-server-tls.yaml", 0o600),
    ] {
        let meta = std::fs::metadata(dir.join(file)).unwrap_or_else(|_| panic!("{file} written"));
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{file}");
    }
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");

    let inspect = run(&["pki", "inspect", dir.to_str().unwrap()]);
    let said = text(&inspect);
    assert!(inspect.status.success(), "{said}");
    for needle in [
        "server.crt chains to ca.crt",
        "client.key matches client.crt",
        "CN=argocd-core-clients",
        "sha256:",
        "days left",
    ] {
        assert!(said.contains(needle), "missing `{needle}` in:\n{said}");
    }
    assert!(
        !said.contains("PRIVATE KEY"),
        "inspect must never print key material"
    );

    let before = std::fs::read(dir.join("ca.key")).unwrap();
    let again = run(&["pki", "init", "--out", dir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    let said = text(&again);
    assert!(
        said.contains("refusing to overwrite") && said.contains("--force"),
        "{said}"
    );
    assert_eq!(
        std::fs::read(dir.join("ca.key")).unwrap(),
        before,
        "nothing overwritten"
    );

    let forced = run(&["pki", "init", "--out", dir.to_str().unwrap(), "--force"]);
    assert!(forced.status.success(), "{}", text(&forced));
    assert_ne!(
        std::fs::read(dir.join("ca.key")).unwrap(),
        before,
        "--force replaces the bundle"
    );
}

#[test]
fn inspect_json_has_the_report_certificate_shape() {
    let tmp = common::tempdir();
    init(tmp.path());
    let out = run(&[
        "pki",
        "inspect",
        "--json",
        tmp.path().join("server.crt").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cert = &v[0]["certificates"][0];
    for field in [
        "subject",
        "issuer",
        "serial",
        "sha256",
        "not_before",
        "not_after",
        "days_left",
        "key",
        "signature_algorithm",
        "key_usage",
        "eku",
        "san",
    ] {
        assert!(!cert[field].is_null(), "missing {field}: {cert}");
    }
}

/// A bundle whose key does not match its certificate is unusable input: exit 2, as `run` says.
#[test]
fn inspect_bundle_reports_a_mismatched_key() {
    let tmp = common::tempdir();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    init(&a);
    init(&b);
    std::fs::copy(b.join("client.key"), a.join("client.key")).unwrap();
    let out = run(&["pki", "inspect", a.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // `run` with the same bundle: the same exit code, naming the key file.
    let probe = run(&["run", "--addr", "127.0.0.1:9", "--pki", a.to_str().unwrap()]);
    assert_eq!(probe.status.code(), Some(2), "{}", text(&probe));
    assert!(text(&probe).contains("client.key"), "{}", text(&probe));
    assert!(
        text(&out).contains("[FAIL] client.key matches client.crt"),
        "{}",
        text(&out)
    );
    // and a leaf from another CA does not chain
    std::fs::copy(b.join("server.crt"), a.join("server.crt")).unwrap();
    let out = run(&["pki", "inspect", a.to_str().unwrap()]);
    assert!(
        text(&out).contains("[FAIL] server.crt chains to ca.crt"),
        "{}",
        text(&out)
    );
}

/// Every kind of bad input: exit 2, and the message names the file and what is wrong with it.
#[test]
fn bad_input_is_named() {
    let tmp = common::tempdir();
    let d = tmp.path();
    init(&d.join("good"));
    std::fs::write(d.join("not-pem.crt"), "hello, this is not PEM\n").unwrap();
    std::fs::write(
        d.join("key-only.pem"),
        std::fs::read(d.join("good/client.key")).unwrap(),
    )
    .unwrap();
    std::fs::write(
        d.join("garbage.crt"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    openssl_ok(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-aes-128-cbc",
            "-pass",
            "pass:x",
            "-out",
            "encrypted.key",
        ],
    );
    openssl_ok(d, &["genpkey", "-algorithm", "ED448", "-out", "ed448.key"]);
    std::fs::create_dir(d.join("partial")).unwrap();
    for f in ["ca.crt", "server.crt", "server.key", "client.crt"] {
        std::fs::copy(d.join("good").join(f), d.join("partial").join(f)).unwrap();
    }
    // bundles for `run`-style loading through ProbePki (same errors, used by --pki)
    let mk_bundle = |name: &str, key: &str| {
        let b = d.join(name);
        std::fs::create_dir(&b).unwrap();
        for f in ["ca.crt", "client.crt"] {
            std::fs::copy(d.join("good").join(f), b.join(f)).unwrap();
        }
        std::fs::copy(d.join(key), b.join("client.key")).unwrap();
        b
    };
    let enc_bundle = mk_bundle("enc-bundle", "encrypted.key");
    let ed448_bundle = mk_bundle("ed448-bundle", "ed448.key");
    let mismatch_bundle = mk_bundle("mismatch-bundle", "good/server.key");

    let p = |f: &str| d.join(f).to_str().unwrap().to_owned();
    let cases: Vec<(Vec<String>, String, &str)> = vec![
        (vec![p("missing.crt")], p("missing.crt"), "No such file"),
        (vec![p("not-pem.crt")], p("not-pem.crt"), "not a PEM file"),
        (
            vec![p("key-only.pem")],
            p("key-only.pem"),
            "contains no certificate (found: PRIVATE KEY)",
        ),
        (vec![p("garbage.crt")], p("garbage.crt"), "not valid X.509"),
        (
            vec![p("partial")],
            p("partial"),
            "bundle file `client.key` is missing",
        ),
    ];
    for (args, path, why) in cases {
        let mut full = vec!["pki".to_owned(), "inspect".to_owned()];
        full.extend(args);
        let out = run(&full.iter().map(String::as_str).collect::<Vec<_>>());
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{full:?}: {said}");
        assert!(
            said.contains(&path) && said.contains(why),
            "{full:?}: expected `{path}` and `{why}` in: {said}"
        );
    }

    // Keys are checked where they are used: loading a bundle for a probe run.
    use argocd_mtls_verify::pki::{PkiPaths, ProbePki};
    let key_cases = [
        (&enc_bundle, "the private key is encrypted"),
        (&ed448_bundle, "unsupported private key"),
        (&mismatch_bundle, "does not belong to the certificate"),
    ];
    for (bundle, why) in key_cases {
        let err = ProbePki::load(&PkiPaths::from_dir(bundle).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(why) && err.contains("client.key"),
            "{}: {err}",
            bundle.display()
        );
    }
}

#[test]
fn help_lists_every_subcommand() {
    let out = run(&["--help"]);
    let said = text(&out);
    assert!(out.status.success());
    for sub in ["pki", "run", "demo", "list"] {
        assert!(
            said.lines().any(|l| l.trim_start().starts_with(sub)),
            "`{sub}` missing from --help:\n{said}"
        );
    }
    let out = run(&["pki", "--help"]);
    let said = text(&out);
    assert!(said.contains("init") && said.contains("inspect"), "{said}");
    // The help says the exit codes the behaviour has (an inconsistent bundle: 2, as in README).
    let top = text(&run(&["--help"]));
    let inspect = text(&run(&["pki", "inspect", "--help"]));
    for (what, said) in [("--help", &top), ("pki inspect --help", &inspect)] {
        let flat = said.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            !flat.contains("exit 1 if not")
                && !flat.contains("or, for `pki inspect`, a bundle check failed"),
            "{what} says a bundle check exits 1:\n{said}"
        );
    }
    assert!(
        inspect
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .contains("exit 2 if not"),
        "{inspect}"
    );
}

/// Issue 16.8: `pki init --force` swaps a complete new bundle in for the old one in one step.
/// Switching layout leaves no file of the previous generation beside the new CA; a directory
/// that also holds the user's own files is not replaced (they would be lost), and its bundle is
/// kept byte for byte; a failure before the swap changes nothing; the result holds together
/// (`pki inspect` exits 0) and keeps its modes.
#[test]
fn init_force_replaces_the_bundle_whole_or_not_at_all() {
    let tmp = common::tempdir();
    let dir = tmp.path().join("bundle");
    let d = dir.to_str().unwrap();
    let out = run(&["pki", "init", "--out", d, "--layout", "per-component"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(dir.join("client-server.crt").is_file());
    let snapshot = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    };

    // A failure before the swap (an invalid namespace) changes nothing.
    let before = snapshot(&dir);
    let bad = run(&[
        "pki",
        "init",
        "--out",
        d,
        "--force",
        "--namespace",
        "Bad_NS",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert_eq!(snapshot(&dir), before);

    // The user's own file in the directory: refused, named, the bundle untouched.
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let refused = run(&["pki", "init", "--out", d, "--force"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("notes.txt"), "{}", text(&refused));
    let mut with_notes = before.clone();
    with_notes.push(("notes.txt".into(), b"mine".to_vec()));
    with_notes.sort();
    assert_eq!(snapshot(&dir), with_notes);
    std::fs::remove_file(dir.join("notes.txt")).unwrap();

    // Per-component -> shared: exactly the shared bundle's files, a new CA, all consistent.
    let old_ca = std::fs::read(dir.join("ca.crt")).unwrap();
    let forced = run(&["pki", "init", "--out", d, "--force"]);
    assert!(forced.status.success(), "{}", text(&forced));
    let names: Vec<String> = snapshot(&dir).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "argocd-repo-server-mtls.yaml",
            "argocd-repo-server-tls.yaml",
            "ca.crt",
            "ca.key",
            "client.crt",
            "client.key",
            "server.crt",
            "server.key"
        ],
        "no per-component file of the previous generation is left"
    );
    assert_ne!(std::fs::read(dir.join("ca.crt")).unwrap(), old_ca);
    let mode = std::fs::metadata(dir.join("ca.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let inspect = run(&["pki", "inspect", d]);
    assert_eq!(inspect.status.code(), Some(0), "{}", text(&inspect));
    // Nothing is left beside it.
    let beside: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(beside, ["bundle"]);
}

/// Issue 16.8: leaves valid longer than ten years get a CA that outlives them; `pki inspect`
/// flags a leaf that outlives its CA (an openssl-made one), and exits 2.
#[test]
fn leaves_never_outlive_their_ca() {
    let tmp = common::tempdir();
    let dir = tmp.path().join("long");
    let d = dir.to_str().unwrap();
    let out = run(&["pki", "init", "--out", d, "--days", "5000"]);
    assert!(out.status.success(), "{}", text(&out));
    let inspect = run(&["pki", "inspect", d]);
    assert_eq!(inspect.status.code(), Some(0), "{}", text(&inspect));
    assert!(
        text(&inspect).contains("server.crt expires no later than ca.crt"),
        "{}",
        text(&inspect)
    );

    // A server certificate openssl signs for longer than the CA lives.
    openssl_ok(
        &dir,
        &[
            "req",
            "-new",
            "-key",
            "server.key",
            "-subj",
            "/CN=argocd-repo-server",
            "-out",
            "server.csr",
        ],
    );
    openssl_ok(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-days",
            "9000",
            "-out",
            "server.crt",
        ],
    );
    std::fs::remove_file(dir.join("server.csr")).unwrap();
    let inspect = run(&["pki", "inspect", d]);
    assert_eq!(inspect.status.code(), Some(2), "{}", text(&inspect));
    assert!(
        text(&inspect).contains("outlives its CA"),
        "{}",
        text(&inspect)
    );
}

/// A FIFO, a directory or a device where a certificate or key belongs is refused at once, naming
/// the file and what it is: `pki inspect` of a FIFO, a bundle whose `client.key` is a FIFO given
/// to `run --pki`, and `/dev/zero` as `--ca-cert` never wait for a writer or an end.
#[test]
fn special_files_as_certificates_or_keys_are_refused_at_once() {
    let tmp = common::tempdir();
    let d = tmp.path();
    init(&d.join("good"));
    let fifo = |path: &Path| {
        let out = std::process::Command::new("mkfifo")
            .arg(path)
            .output()
            .unwrap();
        assert!(out.status.success(), "mkfifo: {}", text(&out));
    };
    fifo(&d.join("pipe.crt"));
    let bundle = d.join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    for f in ["ca.crt", "client.crt"] {
        std::fs::copy(d.join("good").join(f), bundle.join(f)).unwrap();
    }
    fifo(&bundle.join("client.key"));
    let cases: [(Vec<String>, String, &str); 3] = [
        (
            vec![
                "pki".into(),
                "inspect".into(),
                d.join("pipe.crt").display().to_string(),
            ],
            d.join("pipe.crt").display().to_string(),
            "a FIFO",
        ),
        (
            vec![
                "run".into(),
                "--addr".into(),
                "127.0.0.1:1".into(),
                "--pki".into(),
                bundle.display().to_string(),
            ],
            bundle.join("client.key").display().to_string(),
            "a FIFO",
        ),
        (
            vec![
                "run".into(),
                "--addr".into(),
                "127.0.0.1:1".into(),
                "--ca-cert".into(),
                "/dev/zero".into(),
                "--client-cert".into(),
                d.join("good/client.crt").display().to_string(),
                "--client-key".into(),
                d.join("good/client.key").display().to_string(),
            ],
            "/dev/zero".into(),
            "a device",
        ),
    ];
    for (args, file, what) in cases {
        let mut child = std::process::Command::new(bin())
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Bounded: a reader stuck on the FIFO is killed and the case fails.
        let started = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() && started.elapsed().as_secs() < 30 {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if child.try_wait().unwrap().is_none() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} still waiting after 30 s");
        }
        let out = child.wait_with_output().unwrap();
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        assert!(
            said.contains(&file) && said.contains(what),
            "{args:?}: {said}"
        );
    }
}
