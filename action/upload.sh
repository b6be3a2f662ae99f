#!/usr/bin/env bash
# The Action's upload step: sends the SARIF to code scanning once, with `dragnet upload`, and
# waits until GitHub has processed it; skipped when `upload` is false (a dry run).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if ! is_true "${INPUT_UPLOAD:-true}"; then
  echo "upload: false; the SARIF stays in $INPUT_OUTPUT_DIR/sarif"
  set_output upload-exit-code 0
  exit 0
fi
sarif_dir="$INPUT_OUTPUT_DIR/sarif"
if ! compgen -G "$sarif_dir/*.sarif" > /dev/null; then
  echo "no SARIF in $sarif_dir: nothing to upload"
  set_output upload-exit-code 0
  exit 0
fi

receipts="$INPUT_OUTPUT_DIR/uploads.json"
echo "::group::dragnet upload $sarif_dir"
set +e
"$DRAGNET_BIN" upload "$sarif_dir" > "$receipts"
code=$?
set -e
echo "::endgroup::"
set_output upload-exit-code "$code"

files="$(find "$sarif_dir" -maxdepth 1 -name '*.sarif' | wc -l | tr -d ' ')"
processed="$(grep -c '"processing_status": "complete"' "$receipts" || true)"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  printf '\n**Code scanning:** %s of %s SARIF files processed by GitHub for `%s`.\n' \
    "$processed" "$files" "${GITHUB_REPOSITORY:-}" >> "$GITHUB_STEP_SUMMARY"
fi
case "$code" in
  0) echo "uploaded $files SARIF file(s); GitHub processed them" ;;
  3) annotate error "GitHub processed $processed of $files SARIF files; $receipts says why" ;;
  *)
    annotate error "dragnet upload could not do its job (exit $code); the log above says why"
    exit "$code"
    ;;
esac
