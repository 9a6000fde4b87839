"""Typed models of a recipe's `meta.yml` (docs/recipes.md) and of a loaded recipe.

The pydantic models describe the file's shape; `recipes_schema/meta.schema.json`
is generated from them. `Recipe` is what loading produces: the validated
metadata plus the file contents the renderer needs, so rendering never reads
the disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from ogdc_hooks.recipes.problems import Problem

NAME_PATTERN = r"^[a-zA-Z0-9 .-]+$"
URL_PATTERN = r"^https?://[^/\s?#]+\S*$"
# A Kubernetes object name (DNS-1123 subdomain), as a PersistentVolumeClaim is named.
CLAIM_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class _Strict(BaseModel):
    """Unknown keys are an error: a misspelt key must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def safe_filename(name: str) -> str:
    """`name` if it can name a file in the workflow's input directory, else `ValueError`.

    Input files are saved under these names, so a name must not climb out of
    the directory or smuggle control characters into commands and manifests.
    """
    if name in ("", ".", "..") or "/" in name or _CONTROL.search(name):
        raise ValueError(f"{name!r} cannot be used as a file name")
    return name


def url_filename(url: str) -> str:
    """The name a URL's file is saved under: its last path segment, percent-decoded."""
    segment = urlsplit(url).path.rsplit("/", 1)[-1]
    try:
        return safe_filename(unquote(segment))
    except ValueError:
        raise ValueError(f"{url!r} does not end in a usable file name") from None


class UrlInput(_Strict):
    """A file fetched over HTTP(S) at the start of the workflow."""

    type: Literal["url"] = Field(default="url", description="May be left out with `value` given.")
    value: str = Field(
        pattern=URL_PATTERN, description="Absolute http or https URL of one input file."
    )

    @field_validator("value")
    @classmethod
    def _names_a_file(cls, value: str) -> str:
        url_filename(value)
        return value


class DataOneInput(_Strict):
    """Files of a DataONE package, resolved to object URLs at submission time."""

    type: Literal["dataone"]
    dataset_identifier: str = Field(
        min_length=1, description="DataONE package identifier (resource map PID)."
    )
    filename: str | None = Field(
        default=None,
        min_length=1,
        description="Glob (* and ?) on file names, case-insensitive; all files when left out.",
    )


class PvcMountInput(_Strict):
    """Data already on a PersistentVolumeClaim, mounted read-only at /mnt/data/<claim_name>/."""

    type: Literal["pvc_mount"]
    claim_name: str = Field(
        pattern=CLAIM_PATTERN,
        description="The workflow PVC or one listed in OGDC_ALLOWED_INPUT_PVCS.",
    )
    path: str = Field(min_length=1, description="Directory inside the claim (no '..').")
    glob: str = Field(default="*", min_length=1, description="Files of `path` to use.")

    @field_validator("path")
    @classmethod
    def _inside_claim(cls, value: str) -> str:
        if ".." in value.replace("\\", "/").split("/"):
            raise ValueError(f"{value!r} must not contain '..'")
        return value


def _input_kind(data: Any) -> str | None:
    """`type` names the input; a param with only `value` is a url (as ogdc-runner accepts)."""
    if isinstance(data, dict):
        kind = data.get("type")
        if kind is None and "value" in data:
            return "url"
        return kind if isinstance(kind, str) else None
    return getattr(data, "type", None)


InputParam = Annotated[
    Annotated[UrlInput, Tag("url")]
    | Annotated[DataOneInput, Tag("dataone")]
    | Annotated[PvcMountInput, Tag("pvc_mount")],
    Discriminator(_input_kind),
]


class RecipeInput(_Strict):
    """Where the recipe's input files come from."""

    params: list[InputParam] = Field(min_length=1, description="At least one input.")


class ParallelConfig(_Strict):
    """Work on partitions of the input files side by side."""

    enabled: bool = False
    partition_strategy: Literal["files"] = "files"
    partition_size: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Files per partition; default 1 for shell, "
            "VIZ_WORKFLOW_DEFAULT_PARTITION_SIZE (1000) for visualization."
        ),
    )
    max_parallelism: int | None = Field(
        default=None, ge=1, description="Tasks at once; default OGDC_MAX_PARALLEL_LIMIT."
    )


class ShellWorkflow(_Strict):
    """Each command line of `sh_file` becomes one step."""

    type: Literal["shell"]
    sh_file: str = Field(
        default="recipe.sh", min_length=1, description="Script inside the recipe directory."
    )
    parallel: ParallelConfig = ParallelConfig()


class VizWorkflow(_Strict):
    """The PDG visualization pipeline: stage, rasterize, composite, web tiles, 3D tiles."""

    type: Literal["visualization"]
    config_file: str | None = Field(
        default=None,
        min_length=1,
        description="JSON configuration inside the recipe directory; `{}` when left out.",
    )
    batch_size: int | None = Field(
        default=None,
        description="Ignored, with a warning: removed in ogdc-runner 0.4; see parallel.",
    )
    parallel: ParallelConfig = Field(
        default=ParallelConfig(),
        description="Stages side by side on partitions of the input files; else one pod.",
    )


Workflow = ShellWorkflow | VizWorkflow
WorkflowConfig = Annotated[Workflow, Field(discriminator="type")]


class RecipeOutput(_Strict):
    """Where the results go."""

    type: Literal["pvc", "temporary", "dataone"] = Field(
        default="pvc",
        description=(
            "pvc: the workflow PVC; temporary: a zip kept 7 days; dataone: not yet. "
            "Left out: dataone with dataone_id, else pvc."
        ),
    )
    dataone_id: str | None = Field(default=None, description="Only used by `dataone` output.")

    @model_validator(mode="before")
    @classmethod
    def _dataone_when_identified(cls, data: Any) -> Any:
        """`dataone_id` without `type` is a dataone output, as ogdc-runner 0.4.2 reads it."""
        if isinstance(data, dict) and "type" not in data and "dataone_id" in data:
            return {**data, "type": "dataone"}
        return data


class RecipeMeta(_Strict):
    """The contents of `meta.yml`."""

    name: str = Field(
        min_length=1, pattern=NAME_PATTERN, description="Names the recipe and its workflows."
    )
    workflow: WorkflowConfig
    input: RecipeInput
    output: RecipeOutput = RecipeOutput()


def recipe_id(name: str) -> str:
    """The recipe's id as ogdc-runner derives it; it names the Argo workflows."""
    return name.lower().replace(" ", "-")


@dataclass(frozen=True)
class Recipe:
    """A validated recipe with everything rendering needs, read from the repository.

    `directory` and `meta_path` are relative to the repository root (POSIX), so
    problems and reports can point at files on the commit. `warnings` are the
    problems of severity "warning" that did not stop the recipe from loading.
    """

    directory: str
    meta_path: str
    meta: RecipeMeta
    commands: tuple[str, ...] = ()
    viz_config: str = "{}"
    warnings: tuple[Problem, ...] = ()

    @property
    def id(self) -> str:
        return recipe_id(self.meta.name)


@dataclass(frozen=True)
class InputFile:
    """One input file as the workflow fetches it: a URL and the name it is saved under.

    `url` inputs give one each; `dataone` inputs give one per matching object
    once resolved (`recipes/dataone.py`). Rendering takes these, so it never
    touches the network.
    """

    url: str
    filename: str
