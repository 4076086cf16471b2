#!/usr/bin/env bash
# The README's first command: brings up the local control plane (building it on first use),
# installs driftguard from manifests/ through the local overlay with the extension and the controller
# on the host, serves an example Git repository on loopback, creates an Application for it that
# syncs to Synced/Healthy on the kwok node, shows the drift guard denying a kubectl edit, and
# prints what to try next.
# Idempotent.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "${REPO_ROOT}/hack/lib/cluster.sh"

usage() {
  cat <<USAGE
usage: hack/demo.sh

Starts (or reuses) the local Kubernetes control plane (hack/local-up.sh), installs driftguard
(hack/install-local.sh: manifests/local, the extension under gunicorn on https://127.0.0.1:8443),
serves .local/demo/git/shop.git on git://127.0.0.1:\${DEMO_GIT_PORT} (9418), creates the Application
demo/shop for it, shows the drift guard denying a kubectl edit and serves the dashboard through
kubectl proxy on http://127.0.0.1:\${DEMO_PROXY_PORT} (8001).
A cold first run builds the control plane from Go modules (about 8 minutes on 2 cores).
Stop everything with hack/local-down.sh.
USAGE
}

DEMO_GIT_PORT=${DEMO_GIT_PORT:-9418}
DEMO_PROXY_PORT=${DEMO_PROXY_PORT:-8001}
DEMO_DIR=${LOCAL_DIR}/demo

case ${1:-} in -h | --help) usage; exit 0 ;; esac
"${REPO_ROOT}/hack/local-up.sh"
"${REPO_ROOT}/hack/install-local.sh"

k() { "${LOCAL_BIN}/kubectl" --kubeconfig "${KUBECONFIG_PATH}" "$@"; }
git_quiet() { git -c user.name=driftguard-demo -c user.email=demo@driftguard.invalid "$@" >/dev/null; }

# The example repository: a bare repository served by git daemon on loopback, and a working
# clone beside it for the reader to change and push.
if [[ ! -d ${DEMO_DIR}/git/shop.git ]]; then
  log "creating the example repository .local/demo/git/shop.git from hack/demo/shop ..."
  rm -rf "${DEMO_DIR}"
  mkdir -p "${DEMO_DIR}/git"
  git init -q --bare -b main "${DEMO_DIR}/git/shop.git"
  git clone -q "${DEMO_DIR}/git/shop.git" "${DEMO_DIR}/shop" 2>/dev/null
  cp "${REPO_ROOT}"/hack/demo/shop/*.yaml "${DEMO_DIR}/shop/"
  git_quiet -C "${DEMO_DIR}/shop" add .
  git_quiet -C "${DEMO_DIR}/shop" commit -m "shop: frontend Deployment, Service and ConfigMap"
  git_quiet -C "${DEMO_DIR}/shop" push -q origin main
fi
if pid=$(pid_of demo-git-daemon); then
  log "git daemon already serving git://127.0.0.1:${DEMO_GIT_PORT}/ (pid ${pid})"
else
  port_in_use "${DEMO_GIT_PORT}" && die "port ${DEMO_GIT_PORT} is in use by $(who_listens "${DEMO_GIT_PORT}"); set DEMO_GIT_PORT"
  setsid git daemon --reuseaddr --export-all --base-path="${DEMO_DIR}/git" --listen=127.0.0.1 \
    --port="${DEMO_GIT_PORT}" "${DEMO_DIR}/git" </dev/null >>"${LOG_DIR}/demo-git-daemon.log" 2>&1 &
  record_pid demo-git-daemon $!
  deadline=$((SECONDS + 20))
  until port_in_use "${DEMO_GIT_PORT}"; do
    ((SECONDS < deadline)) || die "git daemon did not listen on 127.0.0.1:${DEMO_GIT_PORT} (see .local/logs/demo-git-daemon.log)"
    sleep 0.2
  done
  log "serving the example repository at git://127.0.0.1:${DEMO_GIT_PORT}/shop.git"
fi

log "creating the tenant namespace demo, its project demo (made by the cluster admin) and the Application demo/shop ..."
k create namespace demo --dry-run=client -o yaml | k apply -f - >/dev/null
# The team in namespace demo may deploy this repository into its own namespace, namespaced kinds
# only: the bounds a cluster admin sets for a tenant (README, "Projects").
k apply -f - >/dev/null <<YAML
apiVersion: gitops.driftguard.io/v1alpha1
kind: AppProject
metadata:
  name: demo
  namespace: driftguard-system
spec:
  description: The demo team
  sourceNamespaces: [demo]
  sourceRepos: [git://127.0.0.1:${DEMO_GIT_PORT}/shop.git]
  destinations: [{server: "*", namespace: demo}]
YAML
k apply -f - >/dev/null <<YAML
apiVersion: gitops.driftguard.io/v1alpha1
kind: Application
metadata:
  name: shop
  namespace: demo
  finalizers: [resources-finalizer.gitops.driftguard.io]
spec:
  source:
    repoURL: git://127.0.0.1:${DEMO_GIT_PORT}/shop.git
    path: .
    targetRevision: main
  destination:
    namespace: demo
  project: demo
  syncPolicy:
    automated: {prune: true, selfHeal: true}
  driftGuard:
    mode: enforce
YAML
log "waiting for demo/shop to be Synced and Healthy ..."
k wait -n demo --for=jsonpath='{.status.sync.status}'=Synced application.gitops.driftguard.io/shop --timeout=120s >/dev/null
k wait -n demo --for=jsonpath='{.status.health.status}'=Healthy application.gitops.driftguard.io/shop --timeout=120s >/dev/null
k get applications.gitops.driftguard.io -n demo -o wide
echo
k get -n demo deployment,service,configmap -l gitops.driftguard.io/managed=true

log "the drift guard at work: kubectl edit of an image that Git sets ..."
# The guard's Application index follows the watch within moments of the sync; retry briefly.
for attempt in $(seq 30); do
  if out=$(KUBE_EDITOR="sed -i s/frontend:1.0.0/frontend:hotfix/" k -n demo edit deployment/frontend 2>&1); then
    die "kubectl edit went through; the drift guard should have denied it (see .local/logs/driftguard-extension.log)"
  fi
  if grep -q "is set by Git" <<<"${out}"; then
    printf '%s\n' "${out}" | sed 's/^/    /'
    break
  fi
  ((attempt < 30)) || die "expected the drift guard's denial; kubectl said: ${out}"
  sleep 1
done

# The dashboard, through kubectl proxy as the cluster admin (docs/dashboard.md).
DASHBOARD="http://127.0.0.1:${DEMO_PROXY_PORT}/apis/gitops.driftguard.io/v1alpha1/ui/"
if pid=$(pid_of demo-kubectl-proxy); then
  log "kubectl proxy already serving http://127.0.0.1:${DEMO_PROXY_PORT}/ (pid ${pid})"
elif port_in_use "${DEMO_PROXY_PORT}"; then
  log "port ${DEMO_PROXY_PORT} is in use by $(who_listens "${DEMO_PROXY_PORT}"): no kubectl proxy for the dashboard (set DEMO_PROXY_PORT)"
else
  setsid "${LOCAL_BIN}/kubectl" --kubeconfig "${KUBECONFIG_PATH}" proxy --address=127.0.0.1 \
    --port="${DEMO_PROXY_PORT}" </dev/null >>"${LOG_DIR}/demo-kubectl-proxy.log" 2>&1 &
  record_pid demo-kubectl-proxy $!
  deadline=$((SECONDS + 20))
  until port_in_use "${DEMO_PROXY_PORT}"; do
    ((SECONDS < deadline)) || die "kubectl proxy did not listen on 127.0.0.1:${DEMO_PROXY_PORT} (see .local/logs/demo-kubectl-proxy.log)"
    sleep 0.2
  done
fi
log "the dashboard: ${DASHBOARD}#/apps/demo/shop"

cat <<NEXT

driftguard runs on 127.0.0.1: the control plane, the extension (https://127.0.0.1:8443) and the
controller (http://127.0.0.1:8081/metrics), logs in .local/logs/. Try:

  export KUBECONFIG=${KUBECONFIG_PATH}
  export PATH=${LOCAL_BIN}:${VENV_DIR}/bin:\$PATH   # the pinned kubectl ${KUBE_VERSION}, helm ${HELM_VERSION}, kubectl-driftguard
  kubectl get applications -A -o wide        # served by driftguard's aggregated API
  kubectl driftguard get shop -n demo        # the CLI: summary, objects, drift (docs/cli.md)
  # the dashboard, through kubectl proxy as the cluster admin (docs/dashboard.md):
  #   ${DASHBOARD}#/apps/demo/shop
  kubectl get appprojects -n driftguard-system -o wide   # what each team may deploy, where
  kubectl describe application -n demo shop  # resources, history, Events
  kubectl -n demo get applications -w        # and, in another terminal, change Git:

  cd ${DEMO_DIR}/shop
  sed -i 's/Hello from Git/Hello again/' configmap.yaml
  git commit -am "new greeting" && git push
  # seen within DRIFTGUARD_POLL_SECONDS (30s here), or at once with a push webhook:
  hack/demo-push.sh          # a signed GitHub push event to the controller

  kubectl -n demo scale deployment frontend --replicas=5   # denied: Git sets replicas
  kubectl -n demo delete configmap frontend-config        # denied: only the controller prunes

Stop it:   hack/local-down.sh          (add --purge to delete the cluster's state too)
NEXT
