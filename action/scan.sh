#!/usr/bin/env bash
# The Action's scan step: `dragnet scan` with the Action's inputs. dragnet itself appends the
# summary to $GITHUB_STEP_SUMMARY, writes the counts to $GITHUB_OUTPUT and prints annotations.
# Findings and partial failures (exits 3, 4) are left for the finish step, so the cache and the
# results are still saved; a run that could not do its job (1, 2) fails here.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

args=(scan
  --owner "$INPUT_OWNER"
  --registry "$INPUT_REGISTRY"
  --severity "$INPUT_SEVERITY"
  --scan-timeout "$INPUT_TIMEOUT"
  --output-dir "$INPUT_OUTPUT_DIR"
  --cache-dir "$DRAGNET_CACHE"
  --trivy "$TRIVY_BIN")
while IFS= read -r value; do args+=(--pattern "$value"); done < <(split_list "${INPUT_PATTERN:-}")
while IFS= read -r value; do args+=(--package "$value"); done < <(split_list "${INPUT_PACKAGES:-}")
while IFS= read -r value; do args+=(--platform "$value"); done < <(split_list "${INPUT_PLATFORM:-}")
while IFS= read -r value; do
  args+=(--ignorefile "$value")
done < <(split_list "${INPUT_TRIVYIGNORES:-}")
while IFS= read -r value; do
  args+=(--db-repository "$value")
done < <(split_list "${INPUT_DB_REPOSITORY:-}")
if is_true "${INPUT_IGNORE_UNFIXED:-false}"; then args+=(--ignore-unfixed); fi
if [ -n "${INPUT_FAIL_ON:-}" ]; then args+=(--fail-on "$INPUT_FAIL_ON"); fi

echo "::group::dragnet ${args[*]}"
set +e
"$DRAGNET_BIN" "${args[@]}"
code=$?
set -e
echo "::endgroup::"
set_output exit-code "$code"

case "$code" in
  0) echo "dragnet scan: every image scanned" ;;
  3) echo "dragnet scan: some images could not be scanned; see the annotations and the job summary" ;;
  4) echo "dragnet scan: findings at or above fail-on ($INPUT_FAIL_ON)" ;;
  *)
    annotate error "dragnet scan could not do its job (exit $code); the log above says why"
    exit "$code"
    ;;
esac
