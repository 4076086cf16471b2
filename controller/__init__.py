"""driftguard's GitOps controller: syncs Applications from Git (arriving with the controller issue)."""
