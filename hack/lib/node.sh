# A real node for the local control plane: containerd and runc from Debian's packages, and the
# kubelet built at the pinned version. What this machine forces, each found by trying:
# - cgroup v1: kubelet 1.35+ refuses it unless failCgroupV1: false; the cgroupfs driver (no
#   systemd); cgroupsPerQOS off and no node allocatable enforcement;
# - the sandbox may not raise rlimits nor lower oom_score_adj: containerd gets a base OCI spec
#   without rlimits and restrict_oom_score_adj, or runc fails with "can't get final child's PID";
# - no image can be pulled: the sandbox ("pause") image is built here (hack/pause) and imported;
# - no pod network, only host-network pods: a loopback-only CNI configuration makes the runtime's
#   network ready; swap may be on (failSwapOn: false).
# The node's own address is the machine's, never used: probes name 127.0.0.1 (manifests/local-node).
# The node is tainted gitops.driftguard.io/real-node=true:NoSchedule.
# shellcheck shell=bash
NODE_NAME=driftguard-node # manifests/local-node selects it by this name
NODE_DIR="${LOCAL_DIR}/node"
NODE_SOCKET="${NODE_DIR}/containerd.sock"

ctr_node() { ctr --address "${NODE_SOCKET}" --namespace k8s.io "$@"; }

node_config() {
  rm -rf "${LOG_DIR}/pods" # what a previous node left
  mkdir -p "${NODE_DIR}/cni" "${NODE_DIR}/kubelet" "${NODE_DIR}/state" "${LOG_DIR}/pods" "${PID_DIR}"
  # runc's default spec, without the rlimits the sandbox refuses to raise.
  ctr oci spec | "$(python_bin)" -c '
import json, sys
spec = json.load(sys.stdin)
spec["process"].pop("rlimits", None)
json.dump(spec, sys.stdout, indent=1)' >"${NODE_DIR}/base-spec.json"
  cat >"${NODE_DIR}/containerd.toml" <<TOML
version = 2
root = "${NODE_DIR}/containerd"
state = "${NODE_DIR}/state"
[grpc]
  address = "${NODE_SOCKET}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:local"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      base_runtime_spec = "${NODE_DIR}/base-spec.json"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${NODE_DIR}/cni"
TOML
  echo '{"cniVersion": "1.0.0", "name": "host-network-only", "plugins": [{"type": "loopback"}]}' \
    >"${NODE_DIR}/cni/10-loopback.conflist"
  cat >"${NODE_DIR}/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
address: 127.0.0.1
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
containerRuntimeEndpoint: unix://${NODE_SOCKET}
# Every request to the kubelet's API is authenticated and then authorized by kube-apiserver (the
# Node authorizer lets a node ask): a certificate from the cluster CA alone opens no pod. Nothing
# here calls the kubelet (kube-apiserver has no client certificate for it, and the node's address
# is the machine's, never dialled): the pods' logs are files under .local/logs/pods/.
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${PKI_DIR}/ca.crt}
authorization: {mode: Webhook}
podLogsDir: ${LOG_DIR}/pods
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# Only what asks for this node runs here (manifests/local-node tolerates it): the tests' workloads
# stay on the kwok node, where their images need not exist.
registerWithTaints:
  - {key: gitops.driftguard.io/real-node, value: "true", effect: NoSchedule}
YAML
  # The node's client certificate: CN system:node:<name>, O system:nodes, for the Node authorizer.
  "$(python_bin)" -m certs client --ca "${PKI_DIR}/ca" --out "${NODE_DIR}/kubelet-client" \
    --cn "system:node:${NODE_NAME}" --org system:nodes >/dev/null
  "$(python_bin)" -m certs kubeconfig --ca "${PKI_DIR}/ca" --client "${NODE_DIR}/kubelet-client" \
    --server "${APISERVER_URL}" --out "${NODE_DIR}/kubelet.kubeconfig" >/dev/null
}

# node_down: the kubelet, the containers it ran (their shims outlive containerd), containerd, and
# the kubelet's mounts. Safe to call when nothing runs.
node_down() {
  local pid
  if pid=$(pid_of kubelet); then
    kill -TERM "${pid}" 2>/dev/null || true
    wait_gone "${pid}"
    rm -f "${PID_DIR}/kubelet.pid"
    log "stopped kubelet (pid ${pid})"
  fi
  # The containers first: a killed shim leaves its container running, reparented.
  if pid_of containerd >/dev/null; then
    ctr_node tasks ls -q 2>/dev/null | xargs -r -n1 timeout 10 "$(command -v ctr)" --address "${NODE_SOCKET}" --namespace k8s.io tasks kill --all --signal SIGKILL 2>/dev/null || true
  fi
  pkill -KILL -f "containerd-shim-runc-v2 .*-address ${NODE_SOCKET}" 2>/dev/null || true
  if pid=$(pid_of containerd); then
    kill -TERM "${pid}" 2>/dev/null || true
    wait_gone "${pid}"
    rm -f "${PID_DIR}/containerd.pid"
    log "stopped containerd (pid ${pid})"
  fi
  if [[ -d "${NODE_DIR}" ]] && mount | grep -q " ${NODE_DIR}/"; then
    mount | awk -v d="${NODE_DIR}/" 'index($3, d) == 1 {print $3}' | sort -r | xargs -r umount -l 2>/dev/null || true
  fi
}

wait_gone() { # pid
  local deadline=$((SECONDS + 15))
  while kill -0 "$1" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  kill -KILL "$1" 2>/dev/null || true
}
