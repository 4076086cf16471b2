#!/usr/bin/env bash
# Runs every hack/verify-*.sh check and reports all failures, not just the first.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
ensure_venv
failed=()
for check in "${REPO_ROOT}"/hack/verify-*.sh; do
  [[ "$(basename "${check}")" == verify-all.sh ]] && continue
  if "${check}"; then
    log "ok: $(basename "${check}")"
  else
    failed+=("$(basename "${check}")")
  fi
done
((${#failed[@]} == 0)) || die "failed: ${failed[*]}"
