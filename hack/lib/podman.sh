# podman and Debian's packages, as the image and the real node need them.
# shellcheck shell=bash

# podman on these machines: only runc runs containers (crun refuses hybrid cgroups), and the
# sandbox refuses to raise rlimits, so no default ulimits.
podman_setup() {
  ensure_packages podman:podman runc:runc
  mkdir -p "${LOCAL_DIR}/podman"
  export CONTAINERS_CONF="${LOCAL_DIR}/podman/containers.conf"
  cat >"${CONTAINERS_CONF}" <<CONF
[containers]
default_ulimits = []
[engine]
runtime = "runc"
CONF
}
