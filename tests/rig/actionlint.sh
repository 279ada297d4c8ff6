#!/usr/bin/env bash
# Builds actionlint (the GitHub Actions workflow linter, https://github.com/rhysd/actionlint) from
# its Go module into target/rig/actionlint, for tests/workflows.rs. `go install` verifies the
# module against the Go checksum database; the version is pinned here and nowhere else.
# Idempotent: skips the build when target/rig/actionlint already reports this version.
# actionlint runs shellcheck on `run:` scripts when shellcheck is on PATH, and skips that check
# otherwise (the test then lints everything else).
set -euo pipefail
version=v1.7.12
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/target/rig"
if [ -x "$out/actionlint" ] && "$out/actionlint" -version 2>/dev/null | head -n 1 | grep -qx "${version}"; then
  echo "[rig] actionlint $version already built: $out/actionlint" >&2
  exit 0
fi
command -v go >/dev/null || { echo "tests/rig/actionlint.sh: go is required to build actionlint" >&2; exit 2; }
mkdir -p "$out"
echo "[rig] actionlint $version (go install)" >&2
GOBIN="$out" CGO_ENABLED=0 GOFLAGS=-trimpath go install "github.com/rhysd/actionlint/cmd/actionlint@${version}"
"$out/actionlint" -version | head -n 1 | grep -qx "${version}" || {
  echo "tests/rig/actionlint.sh: $out/actionlint does not report $version" >&2
  exit 1
}
echo "[rig] actionlint $version ready: $out/actionlint" >&2
