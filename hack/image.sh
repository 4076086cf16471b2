#!/usr/bin/env bash
# Builds the driftguard image from the Containerfile with podman, from the project's own files,
# tags it driftguard:<version> and writes an OCI archive under .local/.
#
# No base image can be pulled on the build machines, so the base is made from Debian's packages
# with mmdebstrap (python3 with venv, git, ca-certificates; documentation, manual pages, locales
# and perl left out: the controller runs only git's built-in commands) and cached under
# ~/.cache/driftguard/image/ by a digest of its recipe. With a registry, --base names a public one.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "${REPO_ROOT}/hack/lib/podman.sh"

usage() {
  cat <<USAGE
usage: hack/image.sh [--base IMAGE]

Builds driftguard:<version> (version from pyproject.toml) with podman and saves it as
.local/driftguard-<version>.oci.tar. Installs podman, runc and mmdebstrap from Debian's packages
when they are missing (as root). The base is made from Debian bookworm with mmdebstrap unless
--base names one to pull (it needs python3 with venv, git and ca-certificates).
Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian).
USAGE
}

BASE=""
while (($#)); do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --base) BASE=${2:?--base needs an image}; shift 2 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "${REPO_ROOT}/pyproject.toml" | head -1)
IMAGE="driftguard:${VERSION}"
ARCHIVE="${LOCAL_DIR}/driftguard-${VERSION}.oci.tar"
CONTEXT="${LOCAL_DIR}/image"
BASE_PACKAGES="python3,python3-venv,git,ca-certificates"
started=${SECONDS}

local_base() {
  local recipe digest tar image
  recipe="mmdebstrap bookworm minbase ${BASE_PACKAGES} no-doc no-perl v1"
  digest=$(printf '%s' "${recipe}" | sha256sum | cut -c1-12)
  image="localhost/driftguard-base:bookworm-${digest}"
  if podman image exists "${image}"; then
    echo "${image}"
    return
  fi
  tar="${CACHE_DIR}/image/base-${digest}.tar"
  if [[ ! -s ${tar} ]]; then
    mkdir -p "${CACHE_DIR}/image"
    log "making the base from Debian bookworm with mmdebstrap (${BASE_PACKAGES}) ..."
    # Perl comes with git but only git's scripted commands need it; the controller runs built-ins.
    mmdebstrap --variant=minbase --include="${BASE_PACKAGES}" \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --customize-hook='chroot "$1" dpkg --purge --force-depends perl perl-modules-5.36 libperl5.36 liberror-perl' \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
      bookworm "${tar%.tar}.part.tar" "${DEBIAN_MIRROR}" >"${LOCAL_DIR}/logs/mmdebstrap.log" 2>&1 ||
      die "mmdebstrap failed; see .local/logs/mmdebstrap.log"
    mv "${tar%.tar}.part.tar" "${tar}"
  fi
  podman import --quiet "${tar}" "${image}" >/dev/null || die "podman import of ${tar} failed"
  echo "${image}"
}

context() {
  rm -rf "${CONTEXT}"
  mkdir -p "${CONTEXT}/wheels" "${CONTEXT}/bin"
  log "collecting the pinned wheels (hack/constraints.txt) ..."
  "${VENV_DIR}/bin/python" -m pip wheel --quiet --disable-pip-version-check \
    -c "${REPO_ROOT}/hack/constraints.txt" -w "${CONTEXT}/wheels" "${REPO_ROOT}" >"${LOCAL_DIR}/logs/image-wheels.log" 2>&1 ||
    die "pip wheel failed; see .local/logs/image-wheels.log"
  "${REPO_ROOT}/hack/build.sh" kubectl helm
  cp -L "${LOCAL_BIN}/kubectl" "${LOCAL_BIN}/helm" "${CONTEXT}/bin/"
}

cd "${REPO_ROOT}"
mkdir -p "${LOCAL_DIR}/logs"
ensure_venv
podman_setup
[[ -n ${BASE} ]] || ensure_packages mmdebstrap:mmdebstrap
[[ -n ${BASE} ]] || BASE=$(local_base)
context
log "building ${IMAGE} FROM ${BASE} ..."
podman build --quiet --build-arg "BASE=${BASE}" -f Containerfile -t "${IMAGE}" . >"${LOCAL_DIR}/logs/image-build.log" 2>&1 ||
  { tail -n 20 "${LOCAL_DIR}/logs/image-build.log" >&2; die "podman build failed; see .local/logs/image-build.log"; }
rm -f "${ARCHIVE}"
podman save --quiet --format oci-archive -o "${ARCHIVE}" "${IMAGE}"
size=$(podman image inspect --format '{{.Size}}' "${IMAGE}")
log "built ${IMAGE} in $(duration $((SECONDS - started))): $((size / 1000000)) MB; saved ${ARCHIVE#"${REPO_ROOT}/"}"
