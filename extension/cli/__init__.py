"""``kubectl driftguard``: the Argo CD CLI's everyday verbs as a kubectl plugin. It talks only to
kube-apiserver with the user's kubeconfig, so Kubernetes RBAC governs every verb."""
