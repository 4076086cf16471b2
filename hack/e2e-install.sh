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
   deleted controller pod hands its Lease to the other replica.
Prints the time each step took. driftguard's host processes (hack/install-local.sh) are stopped
first: both would serve 127.0.0.1:8443. At the end the overlay's pods are removed and the node
stopped, and a control plane this script started is stopped too, unless --keep.
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

cluster_was_up=0
host_processes=0
k get --raw /readyz >/dev/null 2>&1 && cluster_was_up=1
# Undoes what this script added and leaves the control plane as it found it: the e2e Application
# (its finalizer run by the controller in the cluster, which prunes what it deployed), its
# namespace and project, the overlay's Deployments (their pods stopped by the kubelet), the node;
# then driftguard's host processes again if they ran, or the control plane down if it did not run.
# The namespace driftguard-system stays: while no extension serves the API, a namespace holding
# Applications could never finish terminating.
cleanup() {
  local status=$?
  pkill -f "git daemon .*--port=${GIT_PORT}" 2>/dev/null || true
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
      "${REPO_ROOT}/hack/install-local.sh" >/dev/null 2>&1 || log "hack/install-local.sh failed: run it to restart driftguard's host processes"
    fi
  fi
  ((status == 0)) || log "e2e-install failed; logs in .local/logs/ (kubelet.log, containerd.log) and /var/log/pods"
}
trap cleanup EXIT

log "== building the image and bringing up the real node"
"${REPO_ROOT}/hack/image.sh"
"${REPO_ROOT}/hack/local-up.sh"
for process in driftguard-controller driftguard-extension; do
  if pid=$(pid_of "${process}"); then
    kill -TERM "${pid}" && rm -f "${PID_DIR}/${process}.pid"
    host_processes=1
    log "stopped the host process ${process} (pid ${pid}): the pods serve 127.0.0.1:8443 now"
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
setsid git daemon --reuseaddr --base-path="${E2E_DIR}/repos" --export-all --listen=127.0.0.1 --port="${GIT_PORT}" \
  "${E2E_DIR}/repos" </dev/null >>"${LOG_DIR}/e2e-git-daemon.log" 2>&1 &
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
denied=""
for _ in $(seq 30); do
  if out=$(KUBE_EDITOR="sed -i s/frontend:1.0.0/frontend:hotfix/" k -n "${NS}" edit deployment/frontend 2>&1); then
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
after=$(k get applications.gitops.driftguard.io -A -o name | sort)
[[ ${after} == "${before}" ]] || die "Applications were lost: before ${before}, after ${after}"
log "deleted ${victim}; replaced by $(ready_extensions | tr '\n' ' ')and all $(wc -l <<<"${after}") Applications still served"

step "a deleted controller pod hands its Lease to the other replica"
holder() { k -n driftguard-system get lease driftguard-controller -o jsonpath='{.spec.holderIdentity}'; }
held() { [[ -n $(holder) ]]; }
moved() { local now; now=$(holder); [[ -n ${now} && ${now} != "${leader}" ]]; }
until_true 60 "a controller to hold the Lease" held
leader=$(holder)
k -n driftguard-system delete pod "${leader}" --wait=false >/dev/null
until_true 90 "another replica to take the Lease" moved
log "the Lease moved from ${leader} to $(holder)"
# The new leader acts: a drift is restored by self-heal.
k -n "${NS}" patch application.gitops.driftguard.io shop --type merge -p '{"spec":{"driftGuard":{"mode":"off"}}}' >/dev/null
k -n "${NS}" patch configmap frontend-config --type merge -p '{"data":{"GREETING":"by hand"}}' >/dev/null
restored() { [[ $(k -n "${NS}" get configmap frontend-config -o jsonpath='{.data.GREETING}') == "Hello from Git" ]]; }
until_true 60 "the new leader to restore Git's value" restored
log "the new leader restored Git's state"
k -n "${NS}" patch application.gitops.driftguard.io shop --type merge -p '{"spec":{"driftGuard":{"mode":"enforce"}}}' >/dev/null
step "e2e-install passed"
