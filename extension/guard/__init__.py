"""The drift guard: admission webhooks that block or flag changes to the fields Git owns.

Layers, outermost last; each module imports only those before it:

- ``reviews``: the AdmissionReview wire format (TypedDicts), parsing and answering. Pure.
- ``fields``: which fields the controller's server-side apply owns, and which of them a request
  changes, removes or takes over. Pure.
- ``index``: the in-memory Application index (mode, allow rules, break-glass, inventory) and the
  thread that keeps it current from the storage watch. No kube client: it gets a source.
- ``verdicts``: every decision, from a request, the index, the settings and the time. Pure but
  for the one GET a ``scale`` of a managed parent needs, behind the ``ParentReader`` interface.
- ``webhook``: bytes in, status and body out, for the Flask views.
- ``kube``: the only module here that talks to kube-apiserver (the parent read).
"""
