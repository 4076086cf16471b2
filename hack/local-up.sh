#!/usr/bin/env bash
# Starts a real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver (RBAC, service-account
# signing, aggregation layer), kube-controller-manager, kube-scheduler and kwok with one fake node.
# Idempotent: components already running are kept, missing ones are started.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "${REPO_ROOT}/hack/lib/cluster.sh"

usage() {
  cat <<USAGE
usage: hack/local-up.sh

Builds or reuses the pinned binaries (hack/build.sh), then starts the local control plane.
  kubeconfig  .local/kubeconfig (admin)
  logs        .local/logs/<component>.log
  state       .local/ (etcd data, PKI, pid files)
Ports (env): APISERVER_PORT=${APISERVER_PORT} ETCD_PORT=${ETCD_PORT} ETCD_PEER_PORT=${ETCD_PEER_PORT}
  CONTROLLER_MANAGER_PORT=${CONTROLLER_MANAGER_PORT} SCHEDULER_PORT=${SCHEDULER_PORT} KWOK_PORT=${KWOK_PORT}
Stop it with hack/local-down.sh.
USAGE
}

KUBECTL=${LOCAL_BIN}/kubectl
NODE_NAME=${NODE_NAME:-kwok-node-0}

fail_component() { # component message
  local log="${LOG_DIR}/$1.log"
  {
    printf 'error: %s: %s\n' "$1" "$2"
    if [[ -s "${log}" ]]; then
      printf -- '--- last lines of %s ---\n' "${log}"
      tail -n 15 "${log}"
      printf -- '---\n'
    fi
  } >&2
  exit 1
}

# wait_until DEADLINE_SECONDS COMPONENT WHAT CMD...: polls CMD until it succeeds.
wait_until() {
  local deadline=$((SECONDS + $1)) component=$2 what=$3
  shift 3
  until "$@" >/dev/null 2>&1; do
    if [[ ${component} != - ]] && ! pid_of "${component}" >/dev/null; then
      fail_component "${component}" "exited while waiting for ${what}"
    fi
    ((SECONDS < deadline)) || fail_component "${component#-}" "timed out after $1s waiting for ${what}"
    sleep 0.5
  done
}

start() { # component args...
  local component=$1 port pid who
  shift
  if pid=$(pid_of "${component}"); then
    log "${component} already running (pid ${pid})"
    return 1
  fi
  port=$(port_of "${component}")
  if port_in_use "${port}"; then
    who=$(who_listens "${port}")
    fail_component "${component}" "port 127.0.0.1:${port} is already in use${who:+ by ${who}}; stop it or set $(tr 'a-z-' 'A-Z_' <<<"${component#kube-}")_PORT"
  fi
  rm -f "${PID_DIR}/${component}.pid"
  log "starting ${component} on 127.0.0.1:${port} (log: ${LOG_DIR#"${REPO_ROOT}/"}/${component}.log)"
  # setsid: the component outlives this script and its terminal; stdin from /dev/null.
  setsid "${LOCAL_BIN}/${component}" "$@" </dev/null >>"${LOG_DIR}/${component}.log" 2>&1 &
  record_pid "${component}" $!
  return 0
}

k() { "${KUBECTL}" --kubeconfig "${KUBECONFIG_PATH}" "$@"; }

apiserver_ready() { k get --raw /readyz >/dev/null 2>&1; }

node_ready() {
  [[ "$(k get node "${NODE_NAME}" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}

# The default ServiceAccount exists once kube-controller-manager's token controllers run:
# Pods cannot be created before that.
default_sa_ready() { k get serviceaccount default -n default; }

main() {
  case ${1:-} in -h | --help) usage; exit 0 ;; esac
  local begin=${SECONDS}
  mkdir -p "${PID_DIR}" "${LOG_DIR}" "${PKI_DIR}" "${LOCAL_DIR}/etcd"

  local all_running=1 c
  for c in "${COMPONENTS[@]}"; do pid_of "${c}" >/dev/null || all_running=0; done
  if ((all_running)) && [[ -x "${KUBECTL}" ]] && apiserver_ready && node_ready; then
    log "the control plane is already running at ${APISERVER_URL} (kubeconfig: .local/kubeconfig)"
    return 0
  fi

  "${REPO_ROOT}/hack/build.sh"
  ensure_venv
  "$(python_bin)" -m certs control-plane --dir "${PKI_DIR}" --server "${APISERVER_URL}" >&2
  cp "${PKI_DIR}/admin.kubeconfig" "${KUBECONFIG_PATH}"

  if start etcd \
    --name driftguard-local --data-dir "${LOCAL_DIR}/etcd" \
    --listen-client-urls "http://127.0.0.1:${ETCD_PORT}" --advertise-client-urls "http://127.0.0.1:${ETCD_PORT}" \
    --listen-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-cluster "driftguard-local=http://127.0.0.1:${ETCD_PEER_PORT}" \
    --listen-metrics-urls "" --unsafe-no-fsync --log-level warn; then
    wait_until 30 etcd "http://127.0.0.1:${ETCD_PORT}/health" curl -fsS "http://127.0.0.1:${ETCD_PORT}/health"
  fi

  if start kube-apiserver \
    --etcd-servers "http://127.0.0.1:${ETCD_PORT}" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "${APISERVER_PORT}" \
    --endpoint-reconciler-type none \
    --tls-cert-file "${PKI_DIR}/apiserver.crt" --tls-private-key-file "${PKI_DIR}/apiserver.key" \
    --client-ca-file "${PKI_DIR}/ca.crt" \
    --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "${PKI_DIR}/sa.pub" --service-account-signing-key-file "${PKI_DIR}/sa.key" \
    --authorization-mode Node,RBAC \
    --requestheader-client-ca-file "${PKI_DIR}/front-proxy-ca.crt" \
    --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "${PKI_DIR}/front-proxy-client.crt" --proxy-client-key-file "${PKI_DIR}/front-proxy-client.key" \
    --profiling=false; then
    log "waiting for kube-apiserver /readyz ..."
  fi
  wait_until 90 kube-apiserver "https://127.0.0.1:${APISERVER_PORT}/readyz" apiserver_ready

  start kube-controller-manager \
    --kubeconfig "${PKI_DIR}/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig "${PKI_DIR}/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig "${PKI_DIR}/kube-controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "${CONTROLLER_MANAGER_PORT}" --leader-elect=false \
    --controllers '*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller,-persistentvolume-binder,-attachdetach,-persistentvolume-expander,-bootstrapsigner,-tokencleaner' \
    --use-service-account-credentials \
    --service-account-private-key-file "${PKI_DIR}/sa.key" --root-ca-file "${PKI_DIR}/ca.crt" \
    --cluster-signing-cert-file "${PKI_DIR}/ca.crt" --cluster-signing-key-file "${PKI_DIR}/ca.key" \
    --profiling=false || true

  start kube-scheduler \
    --kubeconfig "${PKI_DIR}/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "${PKI_DIR}/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig "${PKI_DIR}/kube-scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "${SCHEDULER_PORT}" --leader-elect=false --profiling=false || true

  start kwok \
    --kubeconfig "${PKI_DIR}/kwok.kubeconfig" --config "${LOCAL_BIN}/kwok-stages.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --cidr 10.0.0.1/24 --node-ip 127.0.0.1 --server-address "127.0.0.1:${KWOK_PORT}" || true

  k apply -f - >/dev/null <<NODE
apiVersion: v1
kind: Node
metadata:
  name: ${NODE_NAME}
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/hostname: ${NODE_NAME}
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "250"}
  capacity: {cpu: "32", memory: 256Gi, pods: "250"}
NODE
  log "waiting for node ${NODE_NAME} to become Ready (kwok) ..."
  wait_until 90 kwok "node ${NODE_NAME} Ready" node_ready
  wait_until 60 kube-controller-manager "the default ServiceAccount (token controller)" default_sa_ready
  for c in kube-controller-manager kube-scheduler; do
    pid_of "${c}" >/dev/null || fail_component "${c}" "exited during start-up"
  done

  log "control plane ready at ${APISERVER_URL} in $(duration $((SECONDS - begin)))"
  cat >&2 <<NEXT

  export KUBECONFIG=${KUBECONFIG_PATH}
  ${KUBECTL#"${REPO_ROOT}/"} get nodes
  hack/local-down.sh   # stops it
NEXT
}

main "$@"
