#!/usr/bin/env bash
# The Action's last step: fails the job with dragnet's own exit code when the scan found
# something at or above `fail-on` (4) or could not scan every image or upload every file (3),
# after the cache and the results have been saved.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

scan="${SCAN_EXIT_CODE:-0}"
upload="${UPLOAD_EXIT_CODE:-0}"
if [ "$scan" != 0 ]; then
  case "$scan" in
    3) annotate error "some images could not be scanned; the job summary lists them with the cause" ;;
    4) annotate error "findings at or above $INPUT_FAIL_ON; the job summary lists them" ;;
  esac
  exit "$scan"
fi
if [ "$upload" != 0 ]; then
  exit "$upload"
fi
echo "dragnet: done"
