"""Typed models of a recipe's `meta.yml` (RECIPES.md) and of a loaded recipe.

The pydantic models describe the file's shape; `recipes_schema/meta.schema.json`
is generated from them. `Recipe` is what loading produces: the validated
metadata plus the file contents the renderer needs, so rendering never reads
the disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

NAME_PATTERN = r"^[a-zA-Z0-9 .-]+$"
# A Kubernetes object name (DNS-1123 subdomain), as a PersistentVolumeClaim is named.
CLAIM_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"


class _Strict(BaseModel):
    """Unknown keys are an error: a misspelt key must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class UrlInput(_Strict):
    """A file fetched over HTTP(S) at the start of the workflow."""

    type: Literal["url"] = "url"
    value: str = Field(description="Absolute http or https URL of one input file.")

    @field_validator("value")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s?#]+[^\s]*$", value):
            raise ValueError(f"{value!r} is not an absolute http or https URL")
        return value


class DataOneInput(_Strict):
    """Files of a DataONE package, resolved to object URLs at submission time."""

    type: Literal["dataone"]
    dataset_identifier: str = Field(
        min_length=1, description="DataONE package identifier (resource map PID)."
    )
    filename: str | None = Field(
        default=None, description="Glob (* and ?) on file names, case-insensitive."
    )


class PvcMountInput(_Strict):
    """Data already on a PersistentVolumeClaim, mounted read-only."""

    type: Literal["pvc_mount"]
    claim_name: str = Field(pattern=CLAIM_PATTERN, description="Name of the claim.")
    path: str = Field(min_length=1, description="Directory inside the claim.")
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
    params: list[InputParam] = Field(min_length=1, description="At least one input.")


class ParallelConfig(_Strict):
    """Run each command once per file, partitions of files side by side."""

    enabled: bool = False
    partition_strategy: Literal["files"] = "files"
    partition_size: int = Field(default=1, ge=1, description="Files per partition.")
    max_parallelism: int | None = Field(
        default=None, ge=1, description="Tasks at once; default OGDC_MAX_PARALLEL_LIMIT."
    )


class ShellWorkflow(_Strict):
    """Each command line of `sh_file` becomes one step."""

    type: Literal["shell"]
    sh_file: str = "recipe.sh"
    parallel: ParallelConfig = ParallelConfig()


class VizWorkflow(_Strict):
    """The PDG visualization pipeline: stage, batch, tile."""

    type: Literal["visualization"]
    config_file: str | None = None
    batch_size: int = Field(default=250, ge=1)
    parallel: ParallelConfig = ParallelConfig()


class RecipeOutput(_Strict):
    type: Literal["pvc", "temporary", "dataone"] = "pvc"
    dataone_id: str | None = None


class RecipeMeta(_Strict):
    """The contents of `meta.yml`."""

    name: str = Field(pattern=NAME_PATTERN, description="Names the recipe and its workflows.")
    workflow: Annotated[ShellWorkflow | VizWorkflow, Field(discriminator="type")]
    input: RecipeInput
    output: RecipeOutput = RecipeOutput()


def recipe_id(name: str) -> str:
    """The recipe's id as ogdc-runner derives it; it names the Argo workflows."""
    return name.lower().replace(" ", "-")


@dataclass(frozen=True)
class Recipe:
    """A validated recipe with everything rendering needs, read from the repository.

    `directory` and `meta_path` are relative to the repository root (POSIX), so
    problems and reports can point at files on the commit.
    """

    directory: str
    meta_path: str
    meta: RecipeMeta
    commands: tuple[str, ...] = ()
    viz_config: str = "{}"

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
