#!/usr/bin/env bash
# Adds a real node to the local control plane, beside the kwok node: containerd and runc from
# Debian's packages, the kubelet at the pinned version (hack/lib/node.sh says what this machine
# needs). Idempotent; hack/local-down.sh stops it with the rest.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "${REPO_ROOT}/hack/lib/cluster.sh"
source "${REPO_ROOT}/hack/lib/podman.sh"
source "${REPO_ROOT}/hack/lib/node.sh"

usage() {
  cat <<USAGE
usage: hack/node-up.sh

Starts containerd (socket .local/node/containerd.sock) and a kubelet that registers the Node
${NODE_NAME} with the local control plane (hack/local-up.sh first), and waits until it is Ready.
Only host-network pods run on it. Images are loaded with: ctr --address .local/node/containerd.sock
--namespace k8s.io images import <oci archive>. Logs: .local/logs/containerd.log, kubelet.log.
USAGE
}

k() { "${LOCAL_BIN}/kubectl" --kubeconfig "${KUBECONFIG_PATH}" "$@"; }

pause_image() {
  if ctr_node images ls -q 2>/dev/null | grep -qx 'localhost/pause:local'; then return; fi
  log "building the sandbox image localhost/pause:local (hack/pause) ..."
  local out="${NODE_DIR}/pause"
  mkdir -p "${out}"
  (cd "${REPO_ROOT}/hack/pause" && GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${out}/pause" .)
  cp "${REPO_ROOT}/hack/pause/Containerfile" "${out}/"
  podman build --quiet -t localhost/pause:local "${out}" >/dev/null
  rm -f "${out}/pause.oci.tar"
  podman save --quiet --format oci-archive -o "${out}/pause.oci.tar" localhost/pause:local
  ctr_node images import "${out}/pause.oci.tar" >/dev/null
}

main() {
  case ${1:-} in -h | --help) usage; exit 0 ;; esac
  k get --raw /readyz >/dev/null 2>&1 || die "no control plane at ${APISERVER_URL}: run hack/local-up.sh first"
  ensure_packages containerd:containerd runc:runc /usr/lib/cni/loopback:containernetworking-plugins
  podman_setup
  "${REPO_ROOT}/hack/build.sh" kubelet
  local pid
  if ! pid=$(pid_of containerd); then
    node_config
    log "starting containerd (log: .local/logs/containerd.log)"
    setsid containerd --config "${NODE_DIR}/containerd.toml" </dev/null >>"${LOG_DIR}/containerd.log" 2>&1 &
    record_pid containerd $!
    local deadline=$((SECONDS + 30))
    until ctr --address "${NODE_SOCKET}" version >/dev/null 2>&1; do
      ((SECONDS < deadline)) || die "containerd did not answer within 30s (see .local/logs/containerd.log)"
      sleep 0.3
    done
  fi
  pause_image
  if pid=$(pid_of kubelet); then
    log "kubelet already running (pid ${pid})"
  else
    log "starting kubelet for the Node ${NODE_NAME} (log: .local/logs/kubelet.log)"
    setsid "${LOCAL_BIN}/kubelet" --config "${NODE_DIR}/kubelet.yaml" --kubeconfig "${NODE_DIR}/kubelet.kubeconfig" \
      --hostname-override "${NODE_NAME}" --root-dir "${NODE_DIR}/kubelet" --cert-dir "${NODE_DIR}/kubelet/pki" \
      </dev/null >>"${LOG_DIR}/kubelet.log" 2>&1 &
    record_pid kubelet $!
  fi
  local deadline=$((SECONDS + 90))
  until [[ $(k get node "${NODE_NAME}" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]; do
    pid_of kubelet >/dev/null || { tail -n 20 "${LOG_DIR}/kubelet.log" >&2; die "kubelet exited; its last lines are above"; }
    ((SECONDS < deadline)) || die "the Node ${NODE_NAME} was not Ready within 90s (see .local/logs/kubelet.log)"
    sleep 1
  done
  # registerWithTaints counts only when the Node is first made; an earlier one may remain.
  k taint node "${NODE_NAME}" gitops.driftguard.io/real-node=true:NoSchedule --overwrite >/dev/null
  log "the Node ${NODE_NAME} is Ready (containerd ${NODE_SOCKET#"${REPO_ROOT}/"})"
}

main "$@"
