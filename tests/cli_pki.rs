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
}
