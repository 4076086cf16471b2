# podman and Debian's packages, as the image and the real node need them.
# shellcheck shell=bash

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

# podman on these machines: only runc runs containers (crun refuses hybrid cgroups), and the
# sandbox refuses to raise rlimits, so no default ulimits.
podman_setup() {
  ensure_packages podman:podman runc:runc
  mkdir -p "${LOCAL_DIR}/podman"
  export CONTAINERS_CONF="${LOCAL_DIR}/podman/containers.conf"
  cat >"${CONTAINERS_CONF}" <<CONF
[containers]
default_ulimits = []
[engine]
runtime = "runc"
CONF
}
