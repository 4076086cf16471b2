#!/usr/bin/env bash
# Benchmark of the aggregated API against an equivalent CRD (hack/bench/api.py); prints figures.
# Brings up the local control plane and driftguard if needed. Pass api.py's flags through.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
"${REPO_ROOT}/hack/local-up.sh"
"${REPO_ROOT}/hack/install-local.sh"
cd "${REPO_ROOT}"
exec "${VENV_DIR}/bin/python" -m hack.bench.api "$@"
