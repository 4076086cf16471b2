# Process bookkeeping shared by local-up.sh and local-down.sh.
# shellcheck shell=bash
PID_DIR=${LOCAL_DIR}/pids
LOG_DIR=${LOCAL_DIR}/logs
PKI_DIR=${LOCAL_DIR}/pki
KUBECONFIG_PATH=${LOCAL_DIR}/kubeconfig

ETCD_PORT=${ETCD_PORT:-2379}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-2380}
APISERVER_PORT=${APISERVER_PORT:-6443}
CONTROLLER_MANAGER_PORT=${CONTROLLER_MANAGER_PORT:-10257}
SCHEDULER_PORT=${SCHEDULER_PORT:-10259}
KWOK_PORT=${KWOK_PORT:-10247}
APISERVER_URL=https://127.0.0.1:${APISERVER_PORT}

# Start order; local-down stops in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

port_of() {
  case $1 in
    etcd) echo "${ETCD_PORT}" ;;
    kube-apiserver) echo "${APISERVER_PORT}" ;;
    kube-controller-manager) echo "${CONTROLLER_MANAGER_PORT}" ;;
    kube-scheduler) echo "${SCHEDULER_PORT}" ;;
    kwok) echo "${KWOK_PORT}" ;;
  esac
}

# start_time pid: the kernel's start time of the process, in clock ticks since boot.
start_time() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }

# record_pid name pid: a pid file holds "pid start-time", so a recycled pid is never taken for ours.
record_pid() { echo "$2 $(start_time "$2")" >"${PID_DIR}/$1.pid"; }

# pid_of name: the pid from the pid file, only if that very process is still alive.
pid_of() {
  local file="${PID_DIR}/$1.pid" pid started
  [[ -f "${file}" ]] || return 1
  read -r pid started <"${file}" || true
  [[ "${pid}" =~ ^[0-9]+$ && -n "${started:-}" ]] || return 1
  [[ "$(start_time "${pid}")" == "${started}" ]] || return 1
  echo "${pid}"
}

# who_listens port -> "pid 123 (name)" or empty
who_listens() {
  ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\"\([^\"]*\)\",pid=\([0-9]*\).*/pid \2 (\1)/p' | head -1
}

port_in_use() {
  [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]
}
