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
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "${REPO_ROOT}/pyproject.toml" | head -1)
IMAGE="driftguard:${VERSION}"
ARCHIVE="${LOCAL_DIR}/driftguard-${VERSION}.oci.tar"
CONTEXT="${LOCAL_DIR}/image"
BASE_PACKAGES="python3,python3-venv,git,openssh-client,ca-certificates"
SUITES=(bookworm bookworm-updates bookworm-security)
started=${SECONDS}

# The base is rebuilt when Debian publishes: its cache key is the recipe plus the Date of each
# suite's Release file (bookworm-security's changes with every security update). Offline, the
# newest base made from the same recipe is used, and said so.
local_base() {
  local recipe digest dates tar image suite
  recipe="mmdebstrap ${SUITES[*]} minbase ${BASE_PACKAGES} no-doc no-perl-modules v2"
  digest=$(printf '%s' "${recipe}" | sha256sum | cut -c1-12)
  dates=""
  for suite in "${SUITES[@]}"; do
    dates+=$(curl -fsS --max-time 20 "$(suite_url "${suite}")/dists/${suite}/InRelease" 2>/dev/null | sed -n 's/^Date: //p') ||
      { dates=""; break; }
  done
  mkdir -p "${CACHE_DIR}/image"
  if [[ -n ${dates} ]]; then
    tar="${CACHE_DIR}/image/base-${digest}-$(printf '%s' "${dates}" | sha256sum | cut -c1-12).tar"
  else
    tar=$(find "${CACHE_DIR}/image" -name "base-${digest}-*.tar" -printf '%T@ %p\n' | sort -rn | sed -n '1s/^[^ ]* //p')
    [[ -n ${tar} ]] || die "cannot reach ${DEBIAN_MIRROR} to make the base, and none is cached: set DEBIAN_MIRROR or use --base"
    log "cannot reach ${DEBIAN_MIRROR}: using the cached base ${tar##*/}, which may lack Debian's latest updates"
  fi
  image="localhost/driftguard-base:$(basename "${tar}" .tar)"
  if ! podman image exists "${image}"; then
    if [[ ! -s ${tar} ]]; then
      log "making the base from Debian (${SUITES[*]}) with mmdebstrap: ${BASE_PACKAGES} ..."
      # git's scripted commands need perl's modules; the controller runs only built-ins, so they go
      # (perl-base stays: Debian marks it essential). dpkg is never run in the image.
      mmdebstrap --variant=minbase --include="${BASE_PACKAGES}" \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        --customize-hook='chroot "$1" dpkg --purge --force-depends perl perl-modules-5.36 libperl5.36 liberror-perl' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
        bookworm "${tar%.tar}.part.tar" \
        "deb $(suite_url bookworm) bookworm main" "deb $(suite_url bookworm-updates) bookworm-updates main" \
        "deb $(suite_url bookworm-security) bookworm-security main" >"${LOCAL_DIR}/logs/mmdebstrap.log" 2>&1 ||
        die "mmdebstrap failed; see .local/logs/mmdebstrap.log"
      mv "${tar%.tar}.part.tar" "${tar}"
      # Older bases of the same recipe are superseded.
      find "${CACHE_DIR}/image" -name "base-${digest}-*.tar" ! -path "${tar}" -delete
    fi
    podman import --quiet "${tar}" "${image}" >/dev/null || die "podman import of ${tar} failed"
  fi
  podman tag "${image}" localhost/driftguard-base:bookworm
  echo "${image}"
}

suite_url() { # suite: the mirror that carries it
  case $1 in
    *-security) echo "${DEBIAN_SECURITY_MIRROR}" ;;
    *) echo "${DEBIAN_MIRROR}" ;;
  esac
}

# What the base runs: its CPython (e.g. 311), its glibc (e.g. 36) and its architecture. The
# wheels are chosen for these, not for the machine that builds.
base_facts() { # image
  podman run --rm --network none "$1" python3 -c '
import platform, sys
libc = platform.libc_ver()
assert libc[0] == "glibc", f"the base has no glibc ({libc}): manylinux wheels need it"
print(f"{sys.version_info[0]}{sys.version_info[1]}", libc[1].split(".")[1], platform.machine())'
}

context() { # base image
  local facts python glibc arch requirements platforms=() minor
  rm -rf "${CONTEXT}"
  mkdir -p "${CONTEXT}/wheels" "${CONTEXT}/bin"
  facts=$(base_facts "$1") || die "could not run python3 in the base $1 (it needs python3 with venv, git, openssh-client, ca-certificates)"
  read -r python glibc arch <<<"${facts}"
  log "collecting the pinned wheels (hack/constraints.txt) for CPython ${python:0:1}.${python:1}, glibc 2.${glibc}, ${arch} ..."
  "${VENV_DIR}/bin/python" -m pip wheel --quiet --disable-pip-version-check --no-deps \
    -w "${CONTEXT}/wheels" "${REPO_ROOT}" >"${LOCAL_DIR}/logs/image-wheels.log" 2>&1 ||
    die "pip wheel of driftguard failed; see .local/logs/image-wheels.log"
  # driftguard's own requirements, from its wheel (extras, the test tools, stay out).
  requirements=$("${VENV_DIR}/bin/python" - "${CONTEXT}"/wheels/driftguard-*.whl <<'PY'
import sys, zipfile
wheel = zipfile.ZipFile(sys.argv[1])
metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
for line in wheel.read(metadata).decode().splitlines():
    if line.startswith("Requires-Dist:") and "extra ==" not in line:
        print(line.split(":", 1)[1].strip())
PY
  )
  for minor in $(seq "${glibc}" -1 5); do platforms+=(--platform "manylinux_2_${minor}_${arch}"); done
  platforms+=(--platform "manylinux2014_${arch}" --platform "manylinux2010_${arch}" --platform "manylinux1_${arch}")
  # shellcheck disable=SC2086 # one requirement per word
  "${VENV_DIR}/bin/python" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
    --implementation cp --python-version "${python}" --abi "cp${python}" --abi abi3 --abi none "${platforms[@]}" \
    -c "${REPO_ROOT}/hack/constraints.txt" -d "${CONTEXT}/wheels" ${requirements} >>"${LOCAL_DIR}/logs/image-wheels.log" 2>&1 ||
    die "pip download of the pinned wheels failed; see .local/logs/image-wheels.log"
  "${REPO_ROOT}/hack/build.sh" kubectl helm
  cp -L "${LOCAL_BIN}/kubectl" "${LOCAL_BIN}/helm" "${CONTEXT}/bin/"
}

# The image as the Deployments run it: uid 65532, read-only root, only /tmp writable, no network.
# Its tools answer, ssh finds its user, and both commands' modules import.
smoke_test() {
  podman run --rm --network none --read-only --tmpfs /tmp --user 65532:65532 "${IMAGE}" python -c '
import subprocess
for command in (["git", "--version"], ["ssh", "-G", "git.example.invalid"], ["kubectl", "version", "--client"],
                ["helm", "version", "--short"]):
    run = subprocess.run(command, capture_output=True, text=True)
    assert run.returncode == 0, f"{command[0]} fails in the image: {run.stderr.strip()}"
import controller.manager, controller.reconcile, extension.server  # noqa: F401
' >"${LOCAL_DIR}/logs/image-smoke.log" 2>&1 || { cat "${LOCAL_DIR}/logs/image-smoke.log" >&2; die "the image does not work as uid 65532 on a read-only root"; }
}

cd "${REPO_ROOT}"
mkdir -p "${LOCAL_DIR}/logs"
ensure_venv
podman_setup
[[ -n ${BASE} ]] || ensure_packages mmdebstrap:mmdebstrap
[[ -n ${BASE} ]] || BASE=$(local_base)
context "${BASE}"
log "building ${IMAGE} FROM ${BASE} ..."
podman build --quiet --build-arg "BASE=${BASE}" -f Containerfile -t "${IMAGE}" . >"${LOCAL_DIR}/logs/image-build.log" 2>&1 ||
  { tail -n 20 "${LOCAL_DIR}/logs/image-build.log" >&2; die "podman build failed; see .local/logs/image-build.log"; }
smoke_test
rm -f "${ARCHIVE}"
podman save --quiet --format oci-archive -o "${ARCHIVE}" "${IMAGE}"
size=$(podman image inspect --format '{{.Size}}' "${IMAGE}")
log "built ${IMAGE} in $(duration $((SECONDS - started))): $((size / 1000000)) MB; saved ${ARCHIVE#"${REPO_ROOT}/"}"
