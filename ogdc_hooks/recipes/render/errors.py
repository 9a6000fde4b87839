"""Why a valid recipe cannot be turned into a workflow (yet), in one sentence each."""

from __future__ import annotations


class RenderError(ValueError):
    """The recipe (with these inputs) cannot be rendered; the message says why."""


class UnsupportedOutput(RenderError):
    """The output type is accepted in `meta.yml` but nothing can publish it yet."""


class MissingInputs(RenderError):
    """The recipe needs resolved input files and none (or unusable ones) were given."""


class UnsupportedWorkflow(RenderError):
    """The workflow type cannot run with this recipe's inputs, outputs or commands."""


class WorkflowTooLarge(RenderError):
    """The workflow would pass a limit set below what Argo (etcd) can store."""
