#!/usr/bin/env bash
# ruff (lint and format) and mypy --strict over the project's Python.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "${REPO_ROOT}"
status=0
"${VENV_DIR}/bin/ruff" check . || status=1
"${VENV_DIR}/bin/ruff" format --check . || status=1
"${VENV_DIR}/bin/mypy" || status=1
exit ${status}
