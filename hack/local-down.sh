#!/usr/bin/env bash
# Stops exactly the processes hack/local-up.sh started, by pid file, and nothing else.
# A stale pid file (the process is gone, or the pid now belongs to another program) is removed.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "${REPO_ROOT}/hack/lib/cluster.sh"
source "${REPO_ROOT}/hack/lib/node.sh"

usage() {
  cat <<USAGE
usage: hack/local-down.sh [--purge]

Stops the local control plane (and driftguard's host processes and the real node, if running).
  --purge   also delete the cluster's state (.local/etcd, .local/pki, .local/logs)
USAGE
}

stop() { # name
  local pid file="${PID_DIR}/$1.pid"
  [[ -f "${file}" ]] || return 0
  if ! pid=$(pid_of "$1"); then
    log "$1: stale pid file (no process $(cut -d' ' -f1 "${file}") started by us is alive); removed"
    rm -f "${file}"
    return 0
  fi
  kill -TERM "${pid}" 2>/dev/null || true
  local deadline=$((SECONDS + 15))
  while kill -0 "${pid}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "${pid}" 2>/dev/null; then
    log "$1 (pid ${pid}) ignored SIGTERM for 15s; sending SIGKILL"
    kill -KILL "${pid}" 2>/dev/null || true
  fi
  rm -f "${file}"
  log "stopped $1 (pid ${pid})"
}

main() {
  local purge=0
  case ${1:-} in
    -h | --help) usage; exit 0 ;;
    --purge) purge=1 ;;
    "") ;;
    *) usage >&2; exit 2 ;;
  esac
  local i extra
  # The real node first (hack/node-up.sh): its containers outlive containerd, and hold ports.
  node_down
  # driftguard's own host processes (hack/demo.sh) record pid files here too.
  for extra in "${PID_DIR}"/*.pid; do
    [[ -e "${extra}" ]] || continue
    extra=$(basename "${extra}" .pid)
    [[ " ${COMPONENTS[*]} " == *" ${extra} "* ]] || stop "${extra}"
  done
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do stop "${COMPONENTS[i]}"; done
  if ((purge)); then
    rm -rf "${LOCAL_DIR}/etcd" "${PKI_DIR}" "${LOG_DIR}" "${KUBECONFIG_PATH}"
    log "removed the cluster state in .local/"
  fi
}

main "$@"
