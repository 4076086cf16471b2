"""The steps of one reconcile, one module each, in the order controller.reconcile.Reconciler runs
them:

- project.py: judge the Application by its AppProject; the Scope every later step acts in (whom
  the Application's objects are touched as).
- target.py: what to deploy: a revision fetched and rendered, prepared and checked against the
  project (the spec's, a sync request's, a rollback's, or the last deployed).
- compare.py: the live objects and their drift (server-side apply dry runs).
- decide.py: whether to sync now, and what (pure).
- dryrun.py: a requested dry run: what a sync would do, with diffs, changing nothing.
- operation.py: a sync, step by step (the steps below), and its record.
- apply.py: a sync's applies, wave by wave (CreateNamespace, the inventory recorded first, a
  Running operationState per step); ending an expired break-glass.
- hooks.py: a phase's sync hooks run (PreSync, Sync, PostSync, SyncFail, PreDelete).
- wait.py: a wave waits for the one before to be healthy.
- prune.py: planning and pruning what left Git.
- report.py: what status says: resources, sync, health, drift, break-glass, operationState.
- statuswrite.py: writing status through the status subresource.
- delete.py: an Application deleted: its PreDelete hooks, then its objects deleted (resources
  finalizer) or released.

The pure rules they use are controller/plan.py (order, waves, prune plans, sync options),
controller/hookspec.py (which objects are hooks), controller/diff.py, controller/health.py,
controller/breakglass.py and controller/status.py.
Log lines keep the logger name controller.reconcile.
"""
