//! Golden files: a canonical JSON kept in tests/golden and compared on every run, so a change of
//! any verdict or wording shows up in review. After an intended change, rerun the named test with
//! `UPDATE_GOLDEN=1`.
#![allow(dead_code)]

/// Compares `value` with `tests/golden/<file>` (rewriting the file first under `UPDATE_GOLDEN`);
/// panics with the first differing lines and `update` (the command that refreshes it).
pub fn assert_matches(file: &str, value: &serde_json::Value, update: &str) {
    let got = serde_json::to_string_pretty(value).unwrap() + "\n";
    let golden = super::rig::root().join("tests/golden").join(file);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).unwrap();
    }
    let want = std::fs::read_to_string(&golden)
        .unwrap_or_else(|e| panic!("{}: {e} (create it with {update})", golden.display()));
    if got != want {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .enumerate()
            .filter(|(_, (w, g))| w != g)
            .take(20)
            .map(|(i, (w, g))| format!("line {}:\n  golden: {w}\n  now:    {g}", i + 1))
            .collect();
        panic!(
            "{} differs ({} vs {} lines); first differences:\n{}\nIf the change is intended: {update}",
            golden.display(),
            want.lines().count(),
            got.lines().count(),
            diff.join("\n")
        );
    }
}
