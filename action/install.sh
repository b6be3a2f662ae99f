#!/usr/bin/env bash
# The Action's install step: puts a pinned dragnet and a pinned Trivy on the runner, each
# download checked against the SHA-256 its release publishes, or takes the binaries the
# `dragnet-path` / `trivy-path` inputs name. Outputs: dragnet, trivy, cache-dir, day.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${RUNNER_TEMP:?RUNNER_TEMP is not set: run this inside GitHub Actions}"
tools="$RUNNER_TEMP/dragnet-tools"
mkdir -p "$tools"

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64 | Linux/amd64) rust_target=x86_64-unknown-linux-musl trivy_platform=Linux-64bit ;;
  Linux/aarch64 | Linux/arm64) rust_target=aarch64-unknown-linux-musl trivy_platform=Linux-ARM64 ;;
  *)
    annotate error "dragnet's Action runs on Linux x86_64 or arm64 runners, not $(uname -s)/$(uname -m)"
    exit 1
    ;;
esac

# dragnet: a release of the repository the Action was used from.
if [ -n "${DRAGNET_PATH:-}" ]; then
  [ -x "$DRAGNET_PATH" ] || { annotate error "dragnet-path $DRAGNET_PATH is not an executable"; exit 1; }
  dragnet="$DRAGNET_PATH"
else
  version="${DRAGNET_VERSION#v}"
  repository="${DRAGNET_REPOSITORY:-dragnet-scanner/dragnet}"
  asset="dragnet-$version-$rust_target.tar.gz"
  base="${GITHUB_SERVER_URL:-https://github.com}/$repository/releases/download/v$version"
  echo "::group::Install dragnet $version ($rust_target)"
  download "$base/$asset" "$tools/$asset"
  download "$base/$asset.sha256" "$tools/$asset.sha256"
  verify_sha256 "$tools/$asset" "$tools/$asset.sha256"
  mkdir -p "$tools/dragnet-$version"
  tar -xzf "$tools/$asset" -C "$tools/dragnet-$version"
  dragnet="$tools/dragnet-$version/dragnet"
  echo "::endgroup::"
fi

# Trivy: Aqua Security's release, checked against its checksums file.
if [ -n "${TRIVY_PATH:-}" ]; then
  [ -x "$TRIVY_PATH" ] || { annotate error "trivy-path $TRIVY_PATH is not an executable"; exit 1; }
  trivy="$TRIVY_PATH"
else
  version="${TRIVY_VERSION#v}"
  asset="trivy_${version}_$trivy_platform.tar.gz"
  sums="trivy_${version}_checksums.txt"
  base="${GITHUB_SERVER_URL:-https://github.com}/aquasecurity/trivy/releases/download/v$version"
  echo "::group::Install Trivy $version ($trivy_platform)"
  download "$base/$asset" "$tools/$asset"
  download "$base/$sums" "$tools/$sums"
  verify_sha256 "$tools/$asset" "$tools/$sums"
  mkdir -p "$tools/trivy-$version"
  tar -xzf "$tools/$asset" -C "$tools/trivy-$version" trivy
  trivy="$tools/trivy-$version/trivy"
  echo "::endgroup::"
fi

echo "dragnet: $("$dragnet" --version)"
echo "trivy: $("$trivy" --version | head -n 1)"
set_output dragnet "$dragnet"
set_output trivy "$trivy"
set_output cache-dir "$RUNNER_TEMP/dragnet-cache"
set_output day "$(date -u +%Y-%m-%d)"
