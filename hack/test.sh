#!/usr/bin/env bash
# Runs every test: unit tests, lint and type checks, and the cluster tests against the real
# control plane (started by the pytest session fixture through hack/local-up.sh, or reused).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  cat <<USAGE
usage: hack/test.sh [pytest args...]

Installs what the tests need (a virtualenv in .local/venv from pyproject.toml, the pinned
control-plane binaries from Go modules), then runs pytest over tests/.
  hack/test.sh                      everything, cluster tests included
  hack/test.sh -m 'not cluster'     only the tests that need no cluster
  hack/test.sh tests/certs -k sans  the usual pytest selection
A control plane that this run starts is stopped at the end; one already running is reused and
kept. DRIFTGUARD_KEEP_CLUSTER=1 keeps a started one too.
USAGE
}

case ${1:-} in -h | --help) usage; exit 0 ;; esac
cd "${REPO_ROOT}"
ensure_venv
# The dashboard's browser tests drive Debian's Chromium (Playwright's own browsers are downloads).
ensure_packages chromium:chromium
# Build (or find) the binaries here rather than inside a pytest fixture, so a cold build's
# progress is printed as it happens.
hack/build.sh
exec "${VENV_DIR}/bin/python" -m pytest "$@"
