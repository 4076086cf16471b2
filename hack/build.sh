#!/usr/bin/env bash
# Builds (or finds) the pinned control-plane binaries and links them into .local/bin/.
#
# Each component is cached under ~/.cache/driftguard/bin/<component>/<version>/ with a sha256
# stamp written last; an entry without a matching stamp, or whose binary does not report the
# pinned version, is rebuilt, never used. Binaries of the pinned version already supplied by
# KUBEBUILDER_ASSETS or PATH are used as they are.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  cat <<USAGE
usage: hack/build.sh [component...]

Builds the pinned binaries (default: all) from Go modules and links them into .local/bin/.
Components: kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet etcd kwok helm
Pins (hack/lib/versions.sh): kubernetes ${KUBE_VERSION}, etcd ${ETCD_VERSION}, kwok ${KWOK_VERSION}, helm ${HELM_VERSION}
Environment: DRIFTGUARD_CACHE (default ~/.cache/driftguard), KUBEBUILDER_ASSETS.
USAGE
}

ALL_COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet etcd kwok helm)
GO_ENV=(env GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false")
KUBE_MINOR=${KUBE_VERSION#v*.}; KUBE_MINOR=${KUBE_MINOR%%.*}
KUBE_MAJOR=${KUBE_VERSION#v}; KUBE_MAJOR=${KUBE_MAJOR%%.*}
KUBE_LDFLAGS="-s -w"
# component-base gives --version; client-go gives the User-Agent (kubectl/v1.36.3, not v0.0.0).
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  KUBE_LDFLAGS+=" -X ${pkg}.gitVersion=${KUBE_VERSION} -X ${pkg}.gitMajor=${KUBE_MAJOR} -X ${pkg}.gitMinor=${KUBE_MINOR} -X ${pkg}.gitTreeState=clean"
done

version_of() { # component -> pinned version
  case $1 in
    kube-apiserver | kube-controller-manager | kube-scheduler | kubectl | kubelet) echo "${KUBE_VERSION}" ;;
    etcd) echo "${ETCD_VERSION}" ;;
    kwok) echo "${KWOK_VERSION}" ;;
    helm) echo "${HELM_VERSION}" ;;
    *) die "unknown component '$1' (see hack/build.sh --help)" ;;
  esac
}

# reports_version BINARY COMPONENT: true when BINARY runs and reports the pinned version.
reports_version() {
  local bin=$1 component=$2 want out
  want=$(version_of "${component}")
  case ${component} in
    kubectl) out=$(timeout 20 "${bin}" version --client 2>/dev/null) || return 1 ;;
    helm) out=$(timeout 20 "${bin}" version --short 2>/dev/null) || return 1 ;;
    *) out=$(timeout 20 "${bin}" --version 2>/dev/null) || return 1 ;;
  esac
  # etcd prints "etcd Version: 3.6.8"; the others print the v-prefixed version.
  grep -qE "(^|[^0-9.])v?${want#v}([^0-9.]|$)" <<<"${out}"
}

ldflags_of() {
  case $1 in
    kube-apiserver | kube-controller-manager | kube-scheduler | kubectl | kubelet) echo "${KUBE_LDFLAGS}" ;;
    etcd) echo "-s -w" ;;
    kwok) echo "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION}" ;;
    helm) echo "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" ;;
  esac
}

# The cache key is the version plus a digest of how it is built, so a changed recipe rebuilds.
cache_entry() {
  echo "${CACHE_DIR}/bin/$1/$(version_of "$1")-$(ldflags_of "$1" | sha256sum | cut -c1-8)"
}

cache_valid() { # component
  local dir
  dir=$(cache_entry "$1")
  [[ -f "${dir}/$1" && -f "${dir}/$1.sha256" ]] || return 1
  (cd "${dir}" && sha256sum --quiet --check "$1.sha256" >/dev/null 2>&1) || return 1
  reports_version "${dir}/$1" "$1"
}

# supplied component -> path of a binary of the pinned version from KUBEBUILDER_ASSETS or PATH.
supplied() {
  local candidate
  for candidate in "${KUBEBUILDER_ASSETS:+${KUBEBUILDER_ASSETS}/$1}" "$(command -v "$1" 2>/dev/null || true)"; do
    [[ -n "${candidate}" && -x "${candidate}" ]] || continue
    [[ "$(readlink -f "${candidate}")" == "${LOCAL_BIN}"/* ]] && continue
    if reports_version "${candidate}" "$1"; then echo "${candidate}"; return 0; fi
  done
  return 1
}

require_go() {
  command -v go >/dev/null 2>&1 || die "Go is not installed and no $1 $(version_of "$1") was found in the cache, KUBEBUILDER_ASSETS or PATH. Install Go >= 1.26, or point KUBEBUILDER_ASSETS at a directory with the pinned binaries."
}

# The Kubernetes binaries cannot be `go install`ed: k8s.io/kubernetes replaces its staging
# modules with ./staging/... . A wrapper module that requires it and replaces each staging
# module with its published v0.X.Y release builds them from the module proxy instead.
wrapper_module() {
  local dir="${CACHE_DIR}/src/kubernetes-${KUBE_VERSION}"
  # .ready-2: the wrapper that also builds kubelet (an older one is made again; binaries built
  # from it stay valid, as their cache key is their version and flags).
  if [[ -f "${dir}/.ready-2" ]]; then echo "${dir}"; return 0; fi
  log "generating the wrapper module for k8s.io/kubernetes ${KUBE_VERSION} in ${dir}"
  rm -rf "${dir}" && mkdir -p "${dir}"
  local gomod staging_version="v0.${KUBE_VERSION#v1.}"
  gomod=$("${GO_ENV[@]}" go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')
  [[ -f "${gomod}" ]] || die "could not download k8s.io/kubernetes@${KUBE_VERSION} from the Go module proxy"
  {
    echo "module driftguard.local/kubernetes-wrapper"
    echo
    grep -E '^(go|godebug) ' "${gomod}"
    echo
    echo "require k8s.io/kubernetes ${KUBE_VERSION}"
    echo
    awk -v v="${staging_version}" '
      /=> \.\/staging\// { print "replace " $1 " => " $1 " " v; next }
      $1 ~ /^k8s\.io\// && $2 == "v0.0.0" { print "replace " $1 " => " $1 " " v }' "${gomod}" | sort -u
  } >"${dir}/go.mod"
  cat >"${dir}/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
  (cd "${dir}" && "${GO_ENV[@]}" go mod tidy >/dev/null 2>&1 && "${GO_ENV[@]}" go get -tool "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >/dev/null 2>&1) ||
    die "could not resolve the wrapper module in ${dir} (is the Go module proxy reachable?)"
  touch "${dir}/.ready-2"
  echo "${dir}"
}

kwok_stages() { # writes the kwok stages config next to the binary: kwok exits 'no stages found' without it
  local out=$1 src
  src=$("${GO_ENV[@]}" go mod download -json "sigs.k8s.io/kwok@${KWOK_VERSION}" | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')
  [[ -d "${src}/kustomize/stage" ]] || die "sigs.k8s.io/kwok@${KWOK_VERSION} has no kustomize/stage directory"
  local f first=1
  for f in "${src}/kustomize/stage/node/fast/node-initialize.yaml" "${src}/kustomize/stage/node/heartbeat/node-heartbeat.yaml" "${src}"/kustomize/stage/pod/fast/pod-*.yaml; do
    [[ ${first} == 1 ]] || echo "---"
    first=0
    grep -v '^---$' "${f}"
  done >"${out}"
}

build_into() { # component tmpdir
  local component=$1 out=$2 version
  version=$(version_of "${component}")
  case ${component} in
    kube-apiserver | kube-controller-manager | kube-scheduler | kubectl | kubelet)
      (cd "$(wrapper_module)" && "${GO_ENV[@]}" go build -ldflags "$(ldflags_of "${component}")" -o "${out}/${component}" "k8s.io/kubernetes/cmd/${component}") ;;
    etcd)
      (cd "$(wrapper_module)" && "${GO_ENV[@]}" go build -ldflags "$(ldflags_of etcd)" -o "${out}/etcd" go.etcd.io/etcd/server/v3) ;;
    kwok)
      "${GO_ENV[@]}" GOBIN="${out}" go install -ldflags "$(ldflags_of kwok)" "sigs.k8s.io/kwok/cmd/kwok@${version}"
      kwok_stages "${out}/kwok-stages.yaml" ;;
    helm)
      "${GO_ENV[@]}" GOBIN="${out}" go install -ldflags "$(ldflags_of helm)" "helm.sh/helm/v3/cmd/helm@${version}" ;;
  esac
}

ensure() { # component: link a valid binary of the pinned version into .local/bin
  local component=$1 dir path start
  dir=$(cache_entry "${component}")
  if [[ ${component} != kwok ]] && path=$(supplied "${component}"); then
    ln -sfn "${path}" "${LOCAL_BIN}/${component}"
    log "${component} $(version_of "${component}"): using ${path}"
    return 0
  fi
  if ! cache_valid "${component}"; then
    [[ -e "${dir}" ]] && log "${component} $(version_of "${component}"): cache entry ${dir} is incomplete or corrupt; rebuilding"
    require_go "${component}"
    start=${SECONDS}
    log "${component} $(version_of "${component}"): building from Go modules ..."
    local tmp="${dir}.tmp.$$" build_log="${CACHE_DIR}/logs/${component}.log"
    rm -rf "${tmp}" && mkdir -p "${tmp}" "${CACHE_DIR}/logs"
    if ! build_into "${component}" "${tmp}" >"${build_log}" 2>&1; then
      rm -rf "${tmp}"
      tail -n 20 "${build_log}" >&2
      die "building ${component} $(version_of "${component}") failed; the last lines of ${build_log} are above"
    fi
    (cd "${tmp}" && sha256sum "${component}" >"${component}.sha256")
    rm -rf "${dir}" && mv "${tmp}" "${dir}"
    cache_valid "${component}" || die "${component} was built but does not report version $(version_of "${component}")"
    log "${component} $(version_of "${component}"): built in $(duration $((SECONDS - start)))"
  fi
  ln -sfn "${dir}/${component}" "${LOCAL_BIN}/${component}"
  [[ ${component} == kwok ]] && ln -sfn "${dir}/kwok-stages.yaml" "${LOCAL_BIN}/kwok-stages.yaml"
  return 0
}

# Peak memory in use on the machine while building, sampled once a second.
start_memory_sampler() {
  local file=$1
  echo 0 >"${file}"
  (
    peak=0
    while sleep 1; do
      used=$(awk '/^MemTotal/ {t=$2} /^MemAvailable/ {a=$2} END {print int((t-a)/1024)}' /proc/meminfo)
      ((used > peak)) && peak=${used} && echo "${peak}" >"${file}"
    done
  ) >/dev/null 2>&1 &
  echo $!
}

main() {
  case ${1:-} in -h | --help) usage; exit 0 ;; esac
  local components=("$@")
  ((${#components[@]})) || components=("${ALL_COMPONENTS[@]}")
  mkdir -p "${LOCAL_BIN}" "${CACHE_DIR}/bin"
  local start=${SECONDS}
  PEAK_FILE=$(mktemp)
  SAMPLER=$(start_memory_sampler "${PEAK_FILE}")
  trap 'kill "${SAMPLER}" 2>/dev/null || true; rm -f "${PEAK_FILE}"' EXIT
  local c
  for c in "${components[@]}"; do ensure "${c}"; done
  if ((SECONDS - start > 5)); then
    log "binaries ready in .local/bin/ after $(duration $((SECONDS - start))); peak memory in use on the machine: $(cat "${PEAK_FILE}") MiB"
  fi
}

main "$@"
