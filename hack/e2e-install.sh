#!/usr/bin/env bash
# driftguard installed for real: the image built here, run by a real kubelet on the local control
# plane's real node, from manifests/ (the local-node overlay), then proven from inside the cluster.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "${REPO_ROOT}/hack/lib/cluster.sh"
source "${REPO_ROOT}/hack/lib/node.sh"

usage() {
  cat <<USAGE
usage: hack/e2e-install.sh [--keep]

1. builds the image (hack/image.sh), brings up the control plane and its real node
   (hack/local-up.sh, hack/node-up.sh) and loads the image into the node's containerd;
2. applies manifests/local-node with kubectl apply --server-side -k;
3. waits until both Deployments and the APIService are Available and the webhooks answer;
4. proves, from inside the cluster: an Application syncs to Synced/Healthy; a kubectl edit of a
   managed field is denied; a deleted extension pod is replaced and no Application is lost; a
   deleted controller pod hands its Lease to another replica, which acts.
Prints the time each step took. driftguard's host processes (hack/install-local.sh) are stopped
first: both would serve 127.0.0.1:8443. At the end the cluster is left as it was found: the
overlay's pods removed, the node stopped, the host processes started again if they ran, and a
control plane this script started stopped. --keep leaves it all running instead.
USAGE
}

KEEP=0
case ${1:-} in
  -h | --help) usage; exit 0 ;;
  --keep) KEEP=1 ;;
  "") ;;
  *) usage >&2; die "unknown argument: $1" ;;
esac

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "${REPO_ROOT}/pyproject.toml" | head -1)
E2E_DIR="${LOCAL_DIR}/e2e"
GIT_PORT=${E2E_GIT_PORT:-9419}
NS=e2e-shop
POD_UID=65532 # the image's user (Containerfile)
k() { "${LOCAL_BIN}/kubectl" --kubeconfig "${KUBECONFIG_PATH}" "$@"; }
step_started=${SECONDS}
step() { # name: ends the previous step, with its time
  log "done in $(duration $((SECONDS - step_started)))"
  step_started=${SECONDS}
  log "== $*"
}
until_true() { # seconds what command...: retries the command until it succeeds
  local timeout=$1 what=$2 deadline=$((SECONDS + $1))
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${timeout}s waiting for ${what}"
    sleep 1
  done
}
# The owners (uids) of the sockets listening on 127.0.0.1:port, one line each. Host-network pods
# share the machine's network namespace, so /proc/net/tcp lists their sockets too.
listeners() { # port
  awk -v address="$(printf '0100007F:%04X' "$1")" '$2 == address && $4 == "0A" {print $8}' /proc/net/tcp
}
# Exactly two sockets on the port, both the pods' (uid 65532), none of a host process (root):
# with SO_REUSEPORT a probe may be answered by either replica, so Ready alone proves less.
two_pods_listen() { # port
  [[ $(listeners "$1" | grep -c .) -eq 2 && -z $(listeners "$1" | grep -vx "${POD_UID}") ]]
}

cluster_was_up=0
host_processes=0
installed_before=0
git_daemon=""
if k get --raw /readyz >/dev/null 2>&1; then
  cluster_was_up=1
  k get namespace driftguard-system >/dev/null 2>&1 && installed_before=1
fi
# Undoes what this script added and leaves the control plane as it found it: the e2e Application
# (its finalizer run by the controller in the cluster, which prunes what it deployed), its
# namespace and project, the overlay's Deployments (their pods stopped by the kubelet), the node.
# Then driftguard as it was: the host processes again if they ran; else manifests/local (the
# Deployments without replicas) if driftguard was installed; else uninstalled, APIService first,
# so that no namespace deletion waits on an API that is going away.
cleanup() {
  local status=$?
  [[ -z ${git_daemon} ]] || kill "${git_daemon}" 2>/dev/null || true
  if ((status != 0)) && [[ -d "${LOG_DIR}/pods" ]]; then
    # The kubelet removes a pod's logs with the pod: keep them for whoever reads the failure.
    rm -rf "${LOG_DIR}/e2e-failed-pods" && cp -r "${LOG_DIR}/pods" "${LOG_DIR}/e2e-failed-pods" 2>/dev/null || true
  fi
  if ((KEEP == 0)); then
    log "== cleaning up (hack/e2e-install.sh --keep leaves it all running)"
    k -n "${NS}" delete application.gitops.driftguard.io shop --ignore-not-found --timeout=90s >/dev/null 2>&1 ||
      k -n "${NS}" patch application.gitops.driftguard.io shop --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
    k -n driftguard-system delete appproject.gitops.driftguard.io "${NS}" --ignore-not-found >/dev/null 2>&1 || true
    k delete namespace "${NS}" --ignore-not-found --wait=false >/dev/null 2>&1 || true
    k -n driftguard-system delete deployment driftguard-extension driftguard-controller --ignore-not-found >/dev/null 2>&1 || true
    k -n driftguard-system wait --for=delete pod -l app.kubernetes.io/part-of=driftguard --timeout=60s >/dev/null 2>&1 || true
    node_down
    k delete node "${NODE_NAME}" --ignore-not-found >/dev/null 2>&1 || true
    if ((cluster_was_up == 0)); then
      "${REPO_ROOT}/hack/local-down.sh" >/dev/null 2>&1 || true
    elif ((host_processes)); then
      "${REPO_ROOT}/hack/install-local.sh" >/dev/null 2>&1 || log "hack/install-local.sh failed: run it to start driftguard's host processes again"
    elif ((installed_before)); then
      k apply --server-side --force-conflicts --field-manager driftguard-install -k "${REPO_ROOT}/manifests/local" >/dev/null 2>&1 ||
        log "could not apply manifests/local again: run hack/install-local.sh"
    else
      k delete apiservice v1alpha1.gitops.driftguard.io --ignore-not-found >/dev/null 2>&1 || true
      k delete --ignore-not-found --wait=false -k "${REPO_ROOT}/manifests/local-node" >/dev/null 2>&1 || true
    fi
  fi
  ((status == 0)) || log "e2e-install failed; logs in .local/logs/: kubelet.log, containerd.log, e2e-failed-pods/ (the pods')"
}
trap cleanup EXIT
# A signal ends the script through its EXIT trap, so the cleanup runs.
trap 'exit 143' TERM
trap 'exit 130' INT

log "== building the image and bringing up the real node"
"${REPO_ROOT}/hack/image.sh"
"${REPO_ROOT}/hack/local-up.sh"
for process in driftguard-controller driftguard-extension; do
  if pid=$(pid_of "${process}"); then
    kill -TERM "${pid}"
    wait_gone "${pid}"
    rm -f "${PID_DIR}/${process}.pid"
    host_processes=1
    log "stopped the host process ${process} (pid ${pid}): the pods serve 127.0.0.1:8443 now"
  fi
done
for port in 8443 8081 "${GIT_PORT}"; do
  if port_in_use "${port}"; then
    die "127.0.0.1:${port} is taken by $(who_listens "${port}"); the pods (8443, 8081) and the e2e git daemon (E2E_GIT_PORT) need it"
  fi
done
"${REPO_ROOT}/hack/node-up.sh"
ctr_node images import "${LOCAL_DIR}/driftguard-${VERSION}.oci.tar" >/dev/null
ctr_node images ls -q | grep -qx "localhost/driftguard:${VERSION}" || die "the image did not load into containerd as localhost/driftguard:${VERSION}"

step "kubectl apply --server-side -k manifests/local-node"
k apply --server-side --force-conflicts --field-manager driftguard-install -k "${REPO_ROOT}/manifests/local-node" >/dev/null
# A Deployment applied again with the same image keeps its pods: start from the image just built.
k -n driftguard-system rollout restart deployment/driftguard-extension deployment/driftguard-controller >/dev/null

step "waiting for the Deployments, the APIService and the webhooks"
for deployment in driftguard-extension driftguard-controller; do
  k -n driftguard-system rollout status "deployment/${deployment}" --timeout=180s || {
    k -n driftguard-system get pods -o wide >&2
    k -n driftguard-system get events --sort-by=.lastTimestamp | tail -n 15 >&2
    die "deployment/${deployment} did not become Available"
  }
done
until_true 60 "two extension pods (uid ${POD_UID}) listening on 127.0.0.1:8443" two_pods_listen 8443
until_true 60 "two controller pods (uid ${POD_UID}) listening on 127.0.0.1:8081" two_pods_listen 8081
apiservice_available() {
  [[ $(k get apiservice v1alpha1.gitops.driftguard.io -o jsonpath='{.status.conditions[?(@.type=="Available")].status}') == True ]]
}
until_true 120 "the APIService to be Available" apiservice_available
until_true 60 "kubectl to list Applications" k get applications.gitops.driftguard.io -A
# A labelled object goes through the guard's validating webhook (failurePolicy Fail): kube-apiserver
# reached it when the dry run is allowed or denied by it, and not when the call itself failed.
webhooks_answer() {
  local out
  out=$(k -n default apply --dry-run=server -f - 2>&1 <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: e2e-webhook-probe, labels: {gitops.driftguard.io/managed: "true"}}
YAML
  ) && return 0
  grep -q "denied the request" <<<"${out}" && ! grep -q "failed calling webhook" <<<"${out}"
}
until_true 60 "the guard's webhooks to answer kube-apiserver" webhooks_answer
k -n driftguard-system get pods -o wide

step "an Application syncs to Synced/Healthy"
rm -rf "${E2E_DIR}" && mkdir -p "${E2E_DIR}/repos"
git init --quiet --bare --initial-branch=main "${E2E_DIR}/repos/shop.git"
git clone --quiet "${E2E_DIR}/repos/shop.git" "${E2E_DIR}/shop" 2>/dev/null
cp "${REPO_ROOT}"/hack/demo/shop/*.yaml "${E2E_DIR}/shop/"
git -C "${E2E_DIR}/shop" add -A
git -C "${E2E_DIR}/shop" -c user.name=e2e -c user.email=e2e@example.invalid commit --quiet -m "the shop"
git -C "${E2E_DIR}/shop" push --quiet origin main
git daemon --reuseaddr --base-path="${E2E_DIR}/repos" --export-all --listen=127.0.0.1 --port="${GIT_PORT}" \
  "${E2E_DIR}/repos" </dev/null >>"${LOG_DIR}/e2e-git-daemon.log" 2>&1 &
git_daemon=$!
until_true 20 "git daemon on 127.0.0.1:${GIT_PORT}" git ls-remote "git://127.0.0.1:${GIT_PORT}/shop.git"
k create namespace "${NS}" --dry-run=client -o yaml | k apply -f - >/dev/null
k apply -f - >/dev/null <<YAML
apiVersion: gitops.driftguard.io/v1alpha1
kind: AppProject
metadata: {name: ${NS}, namespace: driftguard-system}
spec:
  sourceNamespaces: [${NS}]
  sourceRepos: ["git://127.0.0.1:${GIT_PORT}/*"]
  destinations: [{server: "*", namespace: ${NS}}]
---
apiVersion: gitops.driftguard.io/v1alpha1
kind: Application
metadata: {name: shop, namespace: ${NS}, finalizers: [resources-finalizer.gitops.driftguard.io]}
spec:
  project: ${NS}
  source: {repoURL: "git://127.0.0.1:${GIT_PORT}/shop.git", targetRevision: main}
  destination: {namespace: ${NS}}
  syncPolicy: {automated: {prune: true, selfHeal: true}}
  driftGuard: {mode: enforce}
YAML
k -n "${NS}" wait --for=jsonpath='{.status.sync.status}'=Synced application.gitops.driftguard.io/shop --timeout=180s
k -n "${NS}" wait --for=jsonpath='{.status.health.status}'=Healthy application.gitops.driftguard.io/shop --timeout=180s
k -n "${NS}" get applications.gitops.driftguard.io -o wide

step "a kubectl edit of a managed field is denied"
grep -q "frontend:1.0.0" "${E2E_DIR}/shop/deployment.yaml" || die "hack/demo/shop/deployment.yaml no longer has the image frontend:1.0.0 this step edits"
denied=""
for _ in $(seq 30); do
  if out=$(KUBE_EDITOR="sed -i s/frontend:1.0.0/frontend:hotfix/" k -n "${NS}" edit deployment/frontend 2>&1); then
    grep -q "Edit cancelled" <<<"${out}" && die "kubectl edit changed nothing (is the live image still frontend:1.0.0?): ${out}"
    die "kubectl edit went through; the drift guard in the cluster should have denied it"
  fi
  if grep -q "is set by Git" <<<"${out}"; then denied=${out}; break; fi
  sleep 1
done
[[ -n ${denied} ]] || die "expected the drift guard's denial; kubectl said: ${out}"
printf '    %s\n' "$(grep -m1 'denied the request' <<<"${denied}")"

step "a deleted extension pod is replaced, and no Application is lost"
ready_extensions() {
  k -n driftguard-system get pods -l app.kubernetes.io/name=driftguard-extension \
    -o jsonpath='{range .items[?(@.status.containerStatuses[0].ready==true)]}{.metadata.name}{"\n"}{end}'
}
two_extensions_ready() { # and no other extension pod left (the rollout's old ones gone)
  [[ $(ready_extensions | grep -c .) -eq 2 ]] &&
    [[ $(k -n driftguard-system get pods -l app.kubernetes.io/name=driftguard-extension --no-headers | wc -l) -eq 2 ]]
}
until_true 120 "two extension pods Ready (the old ones gone)" two_extensions_ready
before=$(k get applications.gitops.driftguard.io -A -o name | sort)
victim=$(ready_extensions | head -n 1)
k -n driftguard-system delete pod "${victim}" --wait=true >/dev/null
k -n driftguard-system rollout status deployment/driftguard-extension --timeout=180s
until_true 120 "two extension pods Ready again" two_extensions_ready
ready_extensions | grep -qx "${victim}" && die "the deleted pod ${victim} is still there"
until_true 60 "the replacement to listen on 127.0.0.1:8443 beside the survivor" two_pods_listen 8443
after=$(k get applications.gitops.driftguard.io -A -o name | sort)
[[ ${after} == "${before}" ]] || die "Applications were lost: before ${before}, after ${after}"
log "deleted ${victim}; replaced by $(ready_extensions | tr '\n' ' ')and all $(wc -l <<<"${after}") Applications still served"

step "a deleted controller pod hands its Lease to another replica, which acts"
holder() { k -n driftguard-system get lease driftguard-controller -o jsonpath='{.spec.holderIdentity}'; }
held() { [[ -n $(holder) ]]; }
moved() { local now; now=$(holder); [[ -n ${now} && ${now} != "${leader}" ]]; }
until_true 60 "a controller to hold the Lease" held
leader=$(holder)
standby=$(k -n driftguard-system get pods -l app.kubernetes.io/name=driftguard-controller \
  -o jsonpath='{range .items[?(@.status.containerStatuses[0].ready==true)]}{.metadata.name}{"\n"}{end}' | grep -vx "${leader}" | head -n 1)
[[ -n ${standby} ]] || die "no Ready standby controller beside the leader ${leader}"
k -n driftguard-system delete pod "${leader}" --wait=false >/dev/null
until_true 90 "another replica to take the Lease" moved
new_leader=$(holder)
if [[ ${new_leader} == "${standby}" ]]; then
  log "the Lease moved from ${leader} to the standby ${new_leader}"
else
  log "the Lease moved from ${leader} to its replacement ${new_leader}, which took it before the standby ${standby}"
fi
# The new leader acts: a drift is restored by self-heal. The guard's replicas see the mode change
# through their watches, so the hand edit is retried until the guard lets it through.
k -n "${NS}" patch application.gitops.driftguard.io shop --type merge -p '{"spec":{"driftGuard":{"mode":"off"}}}' >/dev/null
until_true 30 "the guard to let a hand edit through (driftGuard.mode off)" \
  k -n "${NS}" patch configmap frontend-config --type merge -p '{"data":{"GREETING":"by hand"}}'
restored() { [[ $(k -n "${NS}" get configmap frontend-config -o jsonpath='{.data.GREETING}') == "Hello from Git" ]]; }
until_true 60 "the new leader to restore Git's value" restored
log "the new leader ${new_leader} restored Git's state"
k -n "${NS}" patch application.gitops.driftguard.io shop --type merge -p '{"spec":{"driftGuard":{"mode":"enforce"}}}' >/dev/null
step "e2e-install passed"
