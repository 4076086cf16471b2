#!/usr/bin/env bash
# Benchmark of the aggregated API against an equivalent CRD (hack/bench/api.py); prints figures.
# Brings up the local control plane and driftguard if needed. Pass api.py's flags through.
#
# The controller is paused (SIGSTOP) for the run and resumed at the end: it would reconcile the
# 1,000 benchmark Applications (their repository is a refused loopback port) and load the machine
# for one side of the comparison only, as the CRD's objects have no controller.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
source "${REPO_ROOT}/hack/lib/cluster.sh"
"${REPO_ROOT}/hack/local-up.sh"
"${REPO_ROOT}/hack/install-local.sh"
cd "${REPO_ROOT}"
controller=$(pid_of driftguard-controller || true)
if [[ -n ${controller} ]] && kill -STOP "${controller}"; then
  trap 'kill -CONT "${controller}"' EXIT
  log "paused driftguard-controller (pid ${controller}) for the benchmark"
fi
"${VENV_DIR}/bin/python" -m hack.bench.api "$@"
