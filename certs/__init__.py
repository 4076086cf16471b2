"""driftguard's certificates: CAs, serving and client certificates, kubeconfigs.

``pki`` is pure (PEM bytes in, PEM bytes out); ``files`` and ``controlplane`` write files;
``python -m certs`` is the command line that hack/ uses.
"""
