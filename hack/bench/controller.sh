#!/usr/bin/env bash
# Benchmark of the controller (hack/bench/controller.py): 1,000 Applications to Synced against a
# kubectl apply --server-side floor, drift-restore and push-to-applied latency; prints figures.
# Brings up the local control plane and driftguard if needed. Pass controller.py's flags through.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
"${REPO_ROOT}/hack/local-up.sh"
"${REPO_ROOT}/hack/install-local.sh"
cd "${REPO_ROOT}"
exec "${VENV_DIR}/bin/python" -m hack.bench.controller "$@"
