"""Argo Workflows: what a workflow's status means for a run (pure) and the Argo Server client."""
