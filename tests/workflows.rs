//! The GitHub workflows (.github/workflows) and the krew manifest (deploy/krew) they publish:
//! every `uses:` pinned to a commit with its version beside it; the release's archives, the krew
//! manifest and the image agreeing on names; and, in the rig tier, actionlint (built from its Go
//! module by tests/rig/actionlint.sh) passing every workflow and failing a broken one.

mod common;

use common::rig;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every workflow file, sorted.
fn workflows() -> Vec<PathBuf> {
    let dir = rig::root().join(".github/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")))
        .collect();
    files.sort();
    assert!(
        files.iter().any(|p| p.ends_with("release.yml")),
        "no release.yml among {files:?}"
    );
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(path: &Path) -> Value {
    serde_saphyr::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

/// A pinned `uses:`: the action (owner/repo, maybe a path in it), the commit and the version.
#[derive(Debug, PartialEq, Eq)]
struct Pin {
    action: String,
    commit: String,
    version: String,
}

/// The pins of a workflow's text, or the lines (1-based, as written) whose `uses:` is not
/// `owner/repo@<40 hex> # vX.Y.Z`.
fn pins(text: &str) -> Result<Vec<Pin>, Vec<String>> {
    let uses = regex::Regex::new(r"^\s*(?:-\s+)?uses:").unwrap();
    let pinned = regex::Regex::new(
        r"^\s*(?:-\s+)?uses:\s+([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[^@\s]+)?)@([0-9a-f]{40})\s+#\s+(v\d+\.\d+\.\d+)\s*$",
    )
    .unwrap();
    let (mut found, mut bad) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        if !uses.is_match(line) {
            continue;
        }
        match pinned.captures(line) {
            Some(c) => found.push(Pin {
                action: c[1].to_string(),
                commit: c[2].to_string(),
                version: c[3].to_string(),
            }),
            None => bad.push(format!("line {}: {}", i + 1, line.trim())),
        }
    }
    if bad.is_empty() { Ok(found) } else { Err(bad) }
}

#[test]
fn every_action_is_pinned_to_a_commit_with_its_version() {
    let mut problems = Vec::new();
    // One commit per action and version, one version per action and commit, across workflows.
    let mut by_version: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut by_commit: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut count = 0;
    for file in workflows() {
        match pins(&read(&file)) {
            Ok(found) => {
                for pin in found {
                    count += 1;
                    by_version
                        .entry((pin.action.clone(), pin.version.clone()))
                        .or_default()
                        .insert(pin.commit.clone());
                    by_commit
                        .entry((pin.action, pin.commit))
                        .or_default()
                        .insert(pin.version);
                }
            }
            Err(bad) => problems.push(format!(
                "{}: `uses:` not pinned as owner/repo@<40 hex> # vX.Y.Z:\n  {}",
                file.display(),
                bad.join("\n  ")
            )),
        }
    }
    for ((action, version), commits) in &by_version {
        if commits.len() > 1 {
            problems.push(format!(
                "{action} {version} is pinned to several commits: {commits:?}"
            ));
        }
    }
    for ((action, commit), versions) in &by_commit {
        if versions.len() > 1 {
            problems.push(format!(
                "{action}@{commit} is labelled as several versions: {versions:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(count > 0, "no `uses:` found in any workflow");
}

#[test]
fn the_pin_check_rejects_what_is_not_pinned() {
    let good = "      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1\n";
    assert_eq!(
        pins(good).unwrap(),
        vec![Pin {
            action: "actions/checkout".into(),
            commit: "3d3c42e5aac5ba805825da76410c181273ba90b1".into(),
            version: "v7.0.1".into(),
        }]
    );
    for bad in [
        "      - uses: actions/checkout@v7\n",
        "      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1\n",
        "      - uses: actions/checkout@3d3c42e5 # v7.0.1\n",
        "      - uses: actions/checkout@3D3C42E5AAC5BA805825DA76410C181273BA90B1 # v7.0.1\n",
        "      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7\n",
        "      - uses: ./local-action\n",
        "      - uses: docker://alpine:3\n",
        "    uses: owner/repo/.github/workflows/x.yml@main\n",
    ] {
        assert!(pins(bad).is_err(), "accepted: {bad}");
    }
}

/// The release workflow's archive and binary names, from its binaries job's matrix.
fn release_arches() -> Vec<String> {
    let release = yaml(&rig::root().join(".github/workflows/release.yml"));
    let include = release["jobs"]["binaries"]["strategy"]["matrix"]["include"]
        .as_array()
        .expect("release.yml: jobs.binaries.strategy.matrix.include");
    let mut arches: Vec<String> = include
        .iter()
        .map(|row| {
            row["arch"]
                .as_str()
                .expect("matrix row without arch")
                .to_string()
        })
        .collect();
    arches.sort();
    arches
}

#[test]
fn the_krew_manifest_matches_the_release() {
    let path = rig::root().join("deploy/krew/argocd-mtls-verify.yaml");
    let template = read(&path);
    let manifest = yaml(&path);
    let workflow = read(&rig::root().join(".github/workflows/release.yml"));

    // krew's structural rules (sigs.k8s.io/krew internal/index/validation), on the template.
    assert_eq!(
        manifest["apiVersion"],
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(manifest["kind"], "Plugin");
    // The name is how kubectl runs it (`kubectl argocd-mtls-verify`: krew links
    // kubectl-argocd_mtls_verify) and must match the manifest's file name.
    assert_eq!(manifest["metadata"]["name"], "argocd-mtls-verify");
    let spec = &manifest["spec"];
    let short = spec["shortDescription"].as_str().expect("shortDescription");
    assert!(
        !short.is_empty() && !short.contains(['\r', '\n']),
        "shortDescription: {short:?}"
    );
    assert!(
        spec["description"]
            .as_str()
            .is_some_and(|d| !d.trim().is_empty())
    );
    assert_eq!(spec["version"], "@VERSION@");

    assert_eq!(release_arches(), ["amd64", "arm64"]);
    let platforms = spec["platforms"].as_array().expect("spec.platforms");
    let mut covered = Vec::new();
    for platform in platforms {
        let labels = &platform["selector"]["matchLabels"];
        let os = labels["os"].as_str().expect("selector.matchLabels.os");
        let arch = labels["arch"].as_str().expect("selector.matchLabels.arch");
        covered.push(format!("{os}/{arch}"));
        // The archive the binaries job makes and the release attaches, and the binary in it.
        let archive = format!("argocd-mtls-verify-{os}-{arch}.tar.gz");
        assert_eq!(
            platform["uri"].as_str().unwrap(),
            format!(
                "https://github.com/argocd-mtls-verify/argocd-mtls-verify/releases/download/@VERSION@/{archive}"
            ),
        );
        assert_eq!(
            platform["sha256"].as_str().unwrap(),
            format!("@SHA256_{}_{}@", os.to_uppercase(), arch.to_uppercase())
        );
        assert_eq!(platform["bin"], "argocd-mtls-verify");
        assert!(
            platform.get("files").is_none(),
            "files: the archive's top level is installed whole"
        );
    }
    assert!(
        workflow.contains(r#"gzip -9n >"dist/argocd-mtls-verify-linux-$ARCH.tar.gz""#),
        "release.yml no longer makes dist/argocd-mtls-verify-linux-$ARCH.tar.gz"
    );
    assert!(
        workflow.contains(
            r#"install -m 0755 "dist/argocd-mtls-verify-linux-$ARCH" "$stage/argocd-mtls-verify""#
        ),
        "release.yml no longer puts the binary in the archive as `argocd-mtls-verify` (the manifest's bin)"
    );
    covered.sort();
    assert_eq!(covered, ["linux/amd64", "linux/arm64"]);

    // The release job fills in every placeholder; rendered, the manifest passes krew's rules.
    let placeholder = regex::Regex::new(r"@[A-Z0-9_]+@").unwrap();
    let mut rendered = template.clone();
    for name in placeholder
        .find_iter(&template)
        .map(|m| m.as_str())
        .collect::<BTreeSet<_>>()
    {
        assert!(
            workflow.contains(&format!("s|{name}|")),
            "release.yml does not fill in {name}"
        );
        let value = match name {
            "@VERSION@" => format!("v{}", env!("CARGO_PKG_VERSION")),
            _ => "0123456789abcdef".repeat(4),
        };
        rendered = rendered.replace(name, &value);
    }
    assert!(workflow.contains("deploy/krew/argocd-mtls-verify.yaml >\"$out\""));
    assert!(workflow.contains("out=\"$DIST/argocd-mtls-verify.krew.yaml\""));
    let rendered: Value = serde_saphyr::from_str(&rendered).unwrap();
    let version = rendered["spec"]["version"].as_str().unwrap();
    let semver = regex::Regex::new(r"^v\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$").unwrap();
    assert!(
        semver.is_match(version),
        "krew needs a v-prefixed semver: {version}"
    );
    let sha = regex::Regex::new(r"^[a-f0-9]{64}$").unwrap();
    for platform in rendered["spec"]["platforms"].as_array().unwrap() {
        assert!(sha.is_match(platform["sha256"].as_str().unwrap()));
    }
}

#[test]
fn the_release_pushes_the_image_probe_image_defaults_to() {
    let out = Command::new(common::bin())
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let default = regex::Regex::new(r"\[default: (ghcr\.io/[^\]]*)\]")
        .unwrap()
        .captures(&help)
        .unwrap_or_else(|| panic!("no ghcr.io default in `run --help`:\n{help}"))[1]
        .to_string();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        default,
        format!("ghcr.io/argocd-mtls-verify/argocd-mtls-verify:v{version}")
    );
    // The workflow pushes ghcr.io/<owner>/argocd-mtls-verify:<tag>, the tag being v<version>
    // (checked by its version job), and compares with the binary's default the same way.
    let workflow = read(&rig::root().join(".github/workflows/release.yml"));
    for needle in [
        r#"image="ghcr.io/${GITHUB_REPOSITORY_OWNER,,}/argocd-mtls-verify""#,
        r#"if [ "$GITHUB_REF_NAME" != "v$version" ]; then"#,
        r#"--push -t "$IMAGE:$TAG" ."#,
        r#"sed -n 's/.*\[default: \(ghcr\.io\/[^]]*\)\].*/\1/p'"#,
    ] {
        assert!(workflow.contains(needle), "release.yml lacks {needle}");
    }
}

/// target/rig/actionlint, or a failure naming what builds it.
#[cfg(feature = "rig")]
fn actionlint() -> PathBuf {
    let path = rig::root().join("target/rig/actionlint");
    assert!(
        path.is_file(),
        "{} is missing: build it with `tests/rig/actionlint.sh`",
        path.display()
    );
    path
}

/// Runs actionlint on `files` from `dir`: (success, its output).
#[cfg(feature = "rig")]
fn run_actionlint(dir: &Path, files: &[PathBuf]) -> (bool, String) {
    let out = Command::new(actionlint())
        .args(["-no-color", "-oneline"])
        .args(files)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[cfg(feature = "rig")]
#[test]
fn actionlint_passes_every_workflow() {
    let files = workflows();
    let (ok, output) = run_actionlint(&rig::root(), &files);
    assert!(ok, "actionlint {files:?} failed:\n{output}");
}

#[cfg(feature = "rig")]
#[test]
fn actionlint_fails_a_broken_workflow() {
    let dir = common::tempdir();
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    let bad = workflows.join("bad.yml");
    std::fs::write(
        &bad,
        "name: bad\n\
         on: push\n\
         jobs:\n\
         \x20 build:\n\
         \x20   runs-on: ubuntu-24.04\n\
         \x20   needs: nowhere\n\
         \x20   timeout-minutes: 5\n\
         \x20   no-such-key: true\n\
         \x20   steps:\n\
         \x20     - run: echo ${{ github.no_such_context.x }}\n",
    )
    .unwrap();
    let (ok, output) = run_actionlint(dir.path(), &[bad]);
    assert!(!ok, "actionlint passed a broken workflow:\n{output}");
    for problem in ["nowhere", "no-such-key"] {
        assert!(
            output.contains(problem),
            "actionlint did not report {problem}:\n{output}"
        );
    }
}
