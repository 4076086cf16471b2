# Shared helpers for hack/ scripts. Source it; it sets REPO_ROOT, LOCAL_DIR and the log functions.
# shellcheck shell=bash
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LOCAL_DIR=${LOCAL_DIR:-${REPO_ROOT}/.local}
LOCAL_BIN=${LOCAL_DIR}/bin
# The virtualenv stays in the checkout's .local even when LOCAL_DIR points elsewhere.
VENV_DIR=${VENV_DIR:-${REPO_ROOT}/.local/venv}
CACHE_DIR=${DRIFTGUARD_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/driftguard}
# shellcheck source=hack/lib/versions.sh
source "${REPO_ROOT}/hack/lib/versions.sh"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# duration SECONDS -> "1m05s"
duration() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# python interpreter for the project's own helpers (certs, ...): the venv when there is one.
python_bin() {
  if [[ -x "${VENV_DIR}/bin/python" ]]; then
    echo "${VENV_DIR}/bin/python"
  else
    command -v python3 || die "python3 not found on PATH"
  fi
}

# ensure_venv: .local/venv with the project and its test extra, reinstalled only when
# pyproject.toml or hack/constraints.txt change.
ensure_venv() {
  local venv="${VENV_DIR}" stamp want
  want=$(cat "${REPO_ROOT}/pyproject.toml" "${REPO_ROOT}/hack/constraints.txt" | sha256sum | cut -c1-16)
  stamp="${venv}/.driftguard-${want}"
  [[ -f "${stamp}" ]] && return 0
  local py=${PYTHON:-python3}
  command -v "${py}" >/dev/null 2>&1 || die "${py} not found; driftguard needs Python >= 3.11"
  "${py}" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "driftguard needs Python >= 3.11, ${py} is $("${py}" --version)"
  log "installing driftguard and its test dependencies into ${venv} ..."
  [[ -x "${venv}/bin/python" ]] || "${py}" -m venv "${venv}"
  # pip's output goes to a log (setuptools is chatty about editable installs); shown on failure.
  local pip_log="${venv}/pip-install.log"
  if ! { "${venv}/bin/python" -m pip install --disable-pip-version-check --upgrade pip &&
    "${venv}/bin/python" -m pip install --disable-pip-version-check \
      -c "${REPO_ROOT}/hack/constraints.txt" -e "${REPO_ROOT}[test]"; } >"${pip_log}" 2>&1; then
    tail -n 20 "${pip_log}" >&2
    die "pip could not install driftguard's dependencies; the last lines of ${pip_log} are above"
  fi
  rm -f "${venv}"/.driftguard-* && touch "${stamp}"
}

# ensure_packages command:package ...: installs (as root) the Debian packages of missing commands.
ensure_packages() {
  local pair missing=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || [[ -e ${pair%%:*} ]] || missing+=("${pair#*:}")
  done
  ((${#missing[@]} == 0)) && return 0
  [[ ${EUID} -eq 0 ]] || die "missing ${missing[*]}: install them from Debian's packages (apt-get install ${missing[*]})"
  log "installing ${missing[*]} from Debian's packages ..."
  mkdir -p "${LOCAL_DIR}/logs"
  apt-get update -q >"${LOCAL_DIR}/logs/apt.log" 2>&1 || log "apt-get update failed (see .local/logs/apt.log); trying the package lists at hand"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >>"${LOCAL_DIR}/logs/apt.log" 2>&1 ||
    die "apt-get install ${missing[*]} failed; see .local/logs/apt.log"
}
