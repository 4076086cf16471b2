"""The dashboard, served under the aggregated API's own path (``/apis/gitops.driftguard.io/v1alpha1/ui/``).

It has no login of its own: a browser reaches it through ``kubectl proxy`` or any kube-apiserver
front door, kube-apiserver authenticates the user and authorizes the path as the resource ``ui``
of our group (``list`` for ``ui/``, ``get`` for ``ui/NAME``), and this server authenticates the
proxied request and asks the same SubjectAccessReviews as for the API. The page is static; every
read and action it makes is an API request of the user's own (the Applications API, Events,
SelfSubjectAccessReviews), but for two reads only a server can make: the Applications of every
namespace the user may list, and a watch of them.

Security: a Content-Security-Policy that allows only this server's own scripts and styles and no
inline code; every value the page shows is set as text, never as markup; and the actions carry a
CSRF token (``csrf.py``) that a page of another origin cannot read.
"""

from __future__ import annotations

from extension.ui.routes import Seams, register

__all__ = ["Seams", "register"]
