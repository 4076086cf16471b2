#!/usr/bin/env bash
# Installs driftguard from manifests/ through the local overlay into the local control plane and
# runs the extension on the host under gunicorn, as the ServiceAccount manifests/ creates.
# Idempotent: a running extension is kept.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "${REPO_ROOT}/hack/lib/cluster.sh"

EXTENSION_PORT=${EXTENSION_PORT:-8443}
NAMESPACE=driftguard-system
EXTENSION_DIR=${LOCAL_DIR}/extension
CONTROLLER_PORT=${CONTROLLER_PORT:-8081}
CONTROLLER_DIR=${LOCAL_DIR}/controller
# Git polling interval of the local controller; the webhook receiver refreshes at once.
DRIFTGUARD_POLL_SECONDS=${DRIFTGUARD_POLL_SECONDS:-30}

usage() {
  cat <<USAGE
usage: hack/install-local.sh

Needs a running control plane (hack/local-up.sh). Applies manifests/local, then starts the
extension on https://127.0.0.1:${EXTENSION_PORT} (EXTENSION_PORT) with a token of the
ServiceAccount ${NAMESPACE}/driftguard-extension. Log: .local/logs/driftguard-extension.log
USAGE
}

k() { "${LOCAL_BIN}/kubectl" --kubeconfig "${KUBECONFIG_PATH}" "$@"; }

# A kubeconfig for a ServiceAccount: the host process is exactly as privileged as the pod would be.
sa_kubeconfig() { # serviceaccount file
  local token
  token=$(k create token "$1" -n "${NAMESPACE}" --duration 48h)
  "$(python_bin)" - "$2" "${APISERVER_URL}" "${PKI_DIR}/ca.crt" "$1" "${token}" <<'PY'
import sys
from pathlib import Path

from certs.files import write_kubeconfig

path, server, ca, user, token = sys.argv[1:]
write_kubeconfig(Path(path), {
    "apiVersion": "v1", "kind": "Config",
    "clusters": [{"name": "local", "cluster": {"server": server, "certificate-authority": ca}}],
    "users": [{"name": user, "user": {"token": token}}],
    "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
    "current-context": "local",
})
PY
}

# Served end to end: the extension answers its own readiness probe, kube-apiserver proxies a
# discovery request to it (the APIService's Available condition may still be true from a
# previous process, so it alone proves nothing), and kubectl's discovery lists applications again
# (kube-apiserver's merged discovery drops a group while its APIService is unavailable; this also
# refreshes kubectl's on-disk cache, which may have recorded the gap).
api_served() {
  curl -fsS --cacert "${EXTENSION_DIR}/tls/ca.crt" "https://127.0.0.1:${EXTENSION_PORT}/readyz" >/dev/null 2>&1 &&
    k get --raw /apis/gitops.driftguard.io/v1alpha1 >/dev/null 2>&1 &&
    k api-resources --api-group=gitops.driftguard.io -o name 2>/dev/null | grep -q '^applications\.'
}

main() {
  case ${1:-} in -h | --help) usage; exit 0 ;; esac
  k get --raw /readyz >/dev/null 2>&1 || die "no control plane at ${APISERVER_URL}: run hack/local-up.sh first"
  mkdir -p "${EXTENSION_DIR}" "${LOG_DIR}" "${PID_DIR}"

  log "applying manifests/local (extension port ${EXTENSION_PORT}) ..."
  k kustomize "${REPO_ROOT}/manifests/local" |
    sed -e "s/ port: 8443\$/ port: ${EXTENSION_PORT}/" -e "s#https://127.0.0.1:8443/#https://127.0.0.1:${EXTENSION_PORT}/#" |
    k apply --server-side --force-conflicts --field-manager driftguard-install -f - >/dev/null

  local pid
  if pid=$(pid_of driftguard-extension); then
    log "driftguard-extension already running (pid ${pid})"
  else
    if port_in_use "${EXTENSION_PORT}"; then
      die "port 127.0.0.1:${EXTENSION_PORT} is already in use by $(who_listens "${EXTENSION_PORT}"); set EXTENSION_PORT"
    fi
    sa_kubeconfig driftguard-extension "${EXTENSION_DIR}/kubeconfig"
    log "starting driftguard-extension on https://127.0.0.1:${EXTENSION_PORT} (log: .local/logs/driftguard-extension.log)"
    (
      cd "${REPO_ROOT}"
      KUBECONFIG="${EXTENSION_DIR}/kubeconfig" DRIFTGUARD_BIND="127.0.0.1:${EXTENSION_PORT}" \
        DRIFTGUARD_CERT_DIR="${EXTENSION_DIR}/tls" DRIFTGUARD_WORKERS="${DRIFTGUARD_WORKERS:-1}" \
        setsid "${VENV_DIR}/bin/gunicorn" --config python:extension.gunicorn_conf extension.wsgi:app \
        </dev/null >>"${LOG_DIR}/driftguard-extension.log" 2>&1 &
      record_pid driftguard-extension $!
    )
  fi

  log "waiting for kube-apiserver to serve gitops.driftguard.io/v1alpha1 through the extension ..."
  local deadline=$((SECONDS + 90))
  until api_served; do
    if ! pid_of driftguard-extension >/dev/null; then
      tail -n 20 "${LOG_DIR}/driftguard-extension.log" >&2
      die "driftguard-extension exited; the last lines of .local/logs/driftguard-extension.log are above"
    fi
    if ((SECONDS > deadline)); then
      k get apiservice v1alpha1.gitops.driftguard.io -o jsonpath='{.status.conditions[0].message}' >&2
      die "kube-apiserver did not serve gitops.driftguard.io/v1alpha1 within 90s (APIService condition above)"
    fi
    sleep 0.5
  done
  log "driftguard's API is served: kubectl get applications.gitops.driftguard.io -A"
  start_controller
}

# The controller on the host, as the ServiceAccount driftguard-system/driftguard-controller.
start_controller() {
  local pid
  if pid=$(pid_of driftguard-controller); then
    log "driftguard-controller already running (pid ${pid})"
    return
  fi
  if port_in_use "${CONTROLLER_PORT}"; then
    die "port 127.0.0.1:${CONTROLLER_PORT} is already in use by $(who_listens "${CONTROLLER_PORT}"); set CONTROLLER_PORT"
  fi
  mkdir -p "${CONTROLLER_DIR}"
  sa_kubeconfig driftguard-controller "${CONTROLLER_DIR}/kubeconfig"
  log "starting driftguard-controller (http://127.0.0.1:${CONTROLLER_PORT}/metrics; log: .local/logs/driftguard-controller.log)"
  (
    cd "${REPO_ROOT}"
    KUBECONFIG="${CONTROLLER_DIR}/kubeconfig" DRIFTGUARD_CONTROLLER_BIND="127.0.0.1:${CONTROLLER_PORT}" \
      DRIFTGUARD_BIN_DIR="${LOCAL_BIN}" DRIFTGUARD_GIT_CACHE="${CONTROLLER_DIR}/git" \
      DRIFTGUARD_POLL_SECONDS="${DRIFTGUARD_POLL_SECONDS}" \
      DRIFTGUARD_WEBHOOK_SECRET="${DRIFTGUARD_WEBHOOK_SECRET:-local-webhook-secret}" \
      setsid "${VENV_DIR}/bin/python" -m controller </dev/null >>"${LOG_DIR}/driftguard-controller.log" 2>&1 &
    record_pid driftguard-controller $!
  )
  local deadline=$((SECONDS + 60))
  until curl -fsS "http://127.0.0.1:${CONTROLLER_PORT}/readyz" >/dev/null 2>&1; do
    if ! pid_of driftguard-controller >/dev/null; then
      tail -n 20 "${LOG_DIR}/driftguard-controller.log" >&2
      die "driftguard-controller exited; the last lines of .local/logs/driftguard-controller.log are above"
    fi
    ((SECONDS < deadline)) || die "driftguard-controller was not ready within 60s (see .local/logs/driftguard-controller.log)"
    sleep 0.5
  done
  log "driftguard-controller is ready"
}

main "$@"
