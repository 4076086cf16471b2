#!/usr/bin/env bash
# Benchmark of the drift guard (hack/bench/guard.py): end-to-end update latency with no admission
# check, with a ValidatingAdmissionPolicy, and with the guard; then the handler alone under a
# fixed request rate. Brings up the local control plane and driftguard if needed. Pass
# guard.py's flags through (--rounds, --rate, --seconds, --connections, --keep).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
"${REPO_ROOT}/hack/local-up.sh"
"${REPO_ROOT}/hack/install-local.sh"
cd "${REPO_ROOT}"
exec "${VENV_DIR}/bin/python" -m hack.bench.guard --port "${EXTENSION_PORT:-8443}" "$@"
