"""Checking parsed `meta.yml` data: the models' errors and the rules between keys, as problems.

Pure: takes the data and positions from `yaml_source`, returns the validated
sections and every problem, each pointing at a line and column with a key path
and a plain sentence. Reading files is `load.py`'s job.
"""

from __future__ import annotations

import datetime
import difflib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from ogdc_hooks.recipes.model import (
    CLAIM_PATTERN,
    NAME_PATTERN,
    URL_PATTERN,
    PvcMountInput,
    RecipeInput,
    RecipeMeta,
    RecipeOutput,
    UrlInput,
    VizWorkflow,
    Workflow,
    WorkflowConfig,
    url_filename,
)
from ogdc_hooks.recipes.problems import Problem, Severity
from ogdc_hooks.recipes.yaml_source import DataPath, Mark, Positions, key_path
from ogdc_hooks.settings import Settings

T = TypeVar("T")
_WORKFLOW = TypeAdapter[Workflow](WorkflowConfig)
_PATTERN_RULES = {
    NAME_PATTERN: "may only contain letters, digits, spaces, '.' and '-'",
    URL_PATTERN: "is not an absolute http or https URL",
    CLAIM_PATTERN: (
        "is not a valid claim name (lowercase letters, digits, '-' and '.', "
        "starting and ending with a letter or digit)"
    ),
}


@dataclass(frozen=True)
class LoadPolicy:
    """What the service allows beyond the file format: which claims inputs may mount, how
    many commands a recipe may have, and how many problems are kept."""

    workflow_pvc_name: str = Settings.workflow_pvc_name
    allowed_input_pvcs: tuple[str, ...] = ()
    max_commands: int = Settings.max_commands
    max_problems: int = Settings.max_problems

    @classmethod
    def from_settings(cls, settings: Settings) -> LoadPolicy:
        return cls(
            settings.workflow_pvc_name,
            settings.allowed_input_pvcs,
            settings.max_commands,
            settings.max_problems,
        )


@dataclass
class MetaCheck:
    """The validated meta (None when it has errors), its workflow when that part is valid."""

    meta: RecipeMeta | None
    workflow: Workflow | None
    problems: list[Problem] = field(default_factory=list)


@dataclass
class Reporter:
    """Builds problems for one file from data paths."""

    path: str
    positions: Positions
    problems: list[Problem] = field(default_factory=list)

    def at_value(
        self, where: DataPath, message: str, severity: Severity = "error", *, key: DataPath = ()
    ) -> None:
        self._add(self.positions.value(where), key or where, message, severity)

    def at_key(self, where: DataPath, message: str, severity: Severity = "error") -> None:
        self._add(self.positions.key(where), where, message, severity)

    def _add(self, mark: Mark, where: DataPath, message: str, severity: Severity) -> None:
        self.problems.append(
            Problem(self.path, mark.line, mark.column, key_path(where), message, severity)
        )


def check_meta(
    data: dict[str, Any], positions: Positions, meta_path: str, policy: LoadPolicy
) -> MetaCheck:
    """Validate `data` (the parsed meta file at `meta_path`) against the models and the rules."""
    report = Reporter(meta_path, positions)
    meta: RecipeMeta | None = None
    try:
        meta = RecipeMeta.model_validate(data)
    except ValidationError as err:
        for error in err.errors(include_url=False):
            _report_error(report, data, error)
    # Each valid section is checked even when another one is not: all problems at once.
    workflow = _section(lambda: _WORKFLOW.validate_python(data.get("workflow")))
    inputs = _section(lambda: RecipeInput.model_validate(data.get("input")))
    output = _section(lambda: RecipeOutput.model_validate(data.get("output", {})))
    if inputs is not None:
        _check_inputs(report, inputs, policy)
    if output is not None:
        _check_dataone_id(report, data, output)
    if isinstance(workflow, VizWorkflow):
        _check_visualization(report, data, output)
    return MetaCheck(meta, workflow, report.problems)


def _section(validate: Callable[[], T]) -> T | None:
    try:
        return validate()
    except ValidationError:
        return None


# --- the rules between keys -------------------------------------------------------------


def _check_inputs(report: Reporter, inputs: RecipeInput, policy: LoadPolicy) -> None:
    """Allowed claims, no pvc mixed with fetched inputs, no two urls saved as one file."""
    allowed = {policy.workflow_pvc_name, *policy.allowed_input_pvcs}
    saved_as: dict[str, int] = {}
    for index, param in enumerate(inputs.params):
        where: DataPath = ("input", "params", index)
        if isinstance(param, PvcMountInput) and param.claim_name not in allowed:
            report.at_value((*where, "claim_name"), _claim_refusal(param.claim_name, policy))
        if isinstance(param, UrlInput):
            name = url_filename(param.value)
            if name in saved_as:
                report.at_value(
                    (*where, "value"),
                    f"would be saved as {name!r} like input.params[{saved_as[name]}]; "
                    "url inputs need different file names",
                )
            saved_as.setdefault(name, index)
    mounted = [isinstance(param, PvcMountInput) for param in inputs.params]
    if len(set(mounted)) > 1:
        first_other = mounted.index(not mounted[0])
        report.at_value(
            ("input", "params", first_other, "type"),
            "pvc_mount inputs cannot be mixed with url or dataone inputs",
        )


def _claim_refusal(claim: str, policy: LoadPolicy) -> str:
    workflow_pvc = f"the workflow PVC {policy.workflow_pvc_name!r}"
    if not policy.allowed_input_pvcs:
        return (
            f"{claim!r} is not an allowed claim: only {workflow_pvc} is "
            "(OGDC_ALLOWED_INPUT_PVCS lists no others)"
        )
    others = ", ".join(repr(name) for name in policy.allowed_input_pvcs)
    return (
        f"{claim!r} is not an allowed claim: allowed are {workflow_pvc} and "
        f"{others} (OGDC_ALLOWED_INPUT_PVCS)"
    )


def _check_dataone_id(report: Reporter, data: dict[str, Any], output: RecipeOutput) -> None:
    if output.dataone_id is not None and output.type != "dataone":
        report.at_key(
            ("output", "dataone_id"),
            f"is ignored: output.type is {output.type!r} and only dataone output uses it",
            "warning",
        )
    if output.type != "dataone":
        return
    refusal = (
        "dataone output is not supported yet: the recipe validates, but submitting it fails "
        "until ogdc-hooks can publish to DataONE; use pvc or temporary output to run it now"
    )
    written = data.get("output")
    if isinstance(written, dict) and "type" in written:
        report.at_value(("output", "type"), refusal, "warning")
    else:
        report.at_key(("output", "dataone_id"), f"makes the output dataone; {refusal}", "warning")


def _check_visualization(
    report: Reporter, data: dict[str, Any], output: RecipeOutput | None
) -> None:
    workflow = data.get("workflow")
    if isinstance(workflow, dict) and "batch_size" in workflow:
        report.at_key(
            ("workflow", "batch_size"),
            "is ignored: ogdc-runner 0.4 removed it; visualization recipes are split into "
            "partitions of input files by parallel.partition_size instead (default "
            "VIZ_WORKFLOW_DEFAULT_PARTITION_SIZE, 1000)",
            "warning",
        )
    if output is not None and output.type == "temporary":
        report.at_value(
            ("output", "type"),
            "'temporary' output is not supported for visualization workflows; use pvc",
        )


# --- pydantic errors as sentences -------------------------------------------------------


def _report_error(report: Reporter, data: dict[str, Any], error: ErrorDetails) -> None:
    where, found = _walk(error["loc"])
    value = _lookup(data, where)
    kind = error["type"]
    if kind == "missing":
        report.at_value(where, "required key is missing")
    elif kind == "extra_forbidden":
        report.at_key(where, _unknown_key(where, _walk(error["loc"][:-1])[1]))
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        _report_tag(report, where, value, found)
    else:
        report.at_value(where, _sentence(error, value, found))


def _report_tag(report: Reporter, where: DataPath, value: Any, union: Any) -> None:
    """A param or workflow whose `type` is missing or unknown."""
    tags = ", ".join(_tags(union))
    if not isinstance(value, dict):
        report.at_value(where, f"must be a mapping, not {_describe(value)}")
    elif "type" in value:
        report.at_value((*where, "type"), f"{_show(value['type'])} is not one of {tags}")
    else:
        report.at_value(where, f"required key is missing (one of {tags})", key=(*where, "type"))


def _unknown_key(where: DataPath, model: Any) -> str:
    known = list(model.model_fields) if _is_model(model) else []
    guess = difflib.get_close_matches(str(where[-1]), known, n=1, cutoff=0.6)
    if guess:
        return f"unknown key; did you mean {guess[0]!r}?"
    if known:
        return f"unknown key; allowed keys are {', '.join(known)}"
    return "unknown key"


def _sentence(error: ErrorDetails, value: Any, found: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx", {})
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping, not {_describe(value)}"
    if kind == "list_type":
        return f"must be a list, not {_describe(value)}"
    if kind == "string_type":
        hint = "; put it in quotes" if isinstance(value, int | float | datetime.date) else ""
        return f"must be a string, not {_describe(value)}{hint}"
    if kind == "string_pattern_mismatch":
        rule = _PATTERN_RULES.get(ctx.get("pattern", ""), f"must match {ctx.get('pattern')}")
        return f"{_show(value)} {rule}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "too_short":
        return "must not be empty"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number, not {_describe(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false, not {_describe(value)}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}, not {_show(value)}"
    if kind == "literal_error":
        return f"{_show(value)} is not one of {', '.join(map(str, get_args(found)))}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return error["msg"].replace("Input should be", "must be")


def _walk(loc: tuple[str | int, ...]) -> tuple[DataPath, Any]:
    """The data path of a pydantic location (union tags dropped) and the type it points at."""
    found: Any = RecipeMeta
    where: list[str | int] = []
    for element in loc:
        found = _unwrap(found)
        if _is_union(found) and element in _tags(found):
            found = _members(found)[_tags(found).index(str(element))]
            continue
        where.append(element)
        if _is_model(found) and isinstance(element, str) and element in found.model_fields:
            found = found.model_fields[element].annotation
        elif get_origin(found) is list:
            found = get_args(found)[0]
        else:
            found = None
    return tuple(where), _unwrap(found)


def _unwrap(found: Any) -> Any:
    """Strip `Annotated` and `X | None` down to the type that says what is expected."""
    while True:
        if get_origin(found) is typing.Annotated:
            found = get_args(found)[0]
        elif _is_union(found) and type(None) in get_args(found):
            rest = [arg for arg in get_args(found) if arg is not type(None)]
            found = rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007
        else:
            return found


def _is_union(found: Any) -> bool:
    return get_origin(found) in (Union, types.UnionType)


def _is_model(found: Any) -> bool:
    return isinstance(found, type) and issubclass(found, BaseModel)


def _members(union: Any) -> list[Any]:
    return [_unwrap(member) for member in get_args(union)] if _is_union(union) else []


def _tags(union: Any) -> list[str]:
    """The `type` values that pick each member of a union of models."""
    tags = []
    for member in _members(union):
        if _is_model(member) and "type" in member.model_fields:
            literal = member.model_fields["type"].annotation
            if get_origin(literal) is Literal:
                tags.append(str(get_args(literal)[0]))
    return tags


def _lookup(data: Any, where: DataPath) -> Any:
    for element in where:
        listed = isinstance(data, list) and isinstance(element, int) and element < len(data)
        if not (listed or (isinstance(data, dict) and element in data)):
            return None
        data = data[element]
    return data


def _show(value: Any) -> str:
    """A value as the author wrote it, shortened."""
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _describe(value: Any) -> str:
    """What kind of value the author gave, for 'must be X, not Y'."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return f"{_show(value)} (a true/false value)"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, datetime.date):
        return f"the date {value}"
    if isinstance(value, str):
        return f"the string {_show(value)}"
    return _show(value)
