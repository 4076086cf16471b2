#!/usr/bin/env bash
# Every hack/ script parses, is executable and runs in strict mode.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
status=0
for script in "${REPO_ROOT}"/hack/*.sh "${REPO_ROOT}"/hack/lib/*.sh "${REPO_ROOT}"/.ci/run; do
  name=${script#"${REPO_ROOT}/"}
  bash -n "${script}" || { echo "${name}: does not parse" >&2; status=1; }
  [[ ${script} == */lib/* ]] && continue
  [[ -x ${script} ]] || { echo "${name}: not executable" >&2; status=1; }
  grep -q 'set -o errexit -o nounset -o pipefail' "${script}" || { echo "${name}: not in strict mode" >&2; status=1; }
done
exit ${status}
