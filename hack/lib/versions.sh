# Pinned versions of everything hack/ builds. Changing a pin rebuilds that component (and only it).
# shellcheck shell=bash
KUBE_VERSION=${KUBE_VERSION:-v1.36.3}
# etcd: the version k8s.io/kubernetes@${KUBE_VERSION} itself requires (see its go.mod).
ETCD_VERSION=${ETCD_VERSION:-v3.6.8}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
