"""What Argo's workflow validator checks beyond the JSON schema, for the fake Argo Server.

A port of the parts of argo-workflows' `workflow/validate/validate.go` (`Workflow`,
`validateTemplateHolder`, `validateTemplate`, `validateSteps`, `validateDAG`,
`validateLeaf`, `validateOutputs`, `validateArguments`, `validateWorkflowFieldNames`,
`resolveAllVariables`) that concern the workflows ogdc-hooks renders, with its
messages, in its order, stopping at the first problem as Argo does. Variable
scopes follow `util/variables/keys/*.go`; template kinds
`pkg/apis/workflow/v1alpha1/workflow_types.go` (`IsLeaf`, `IsPodType`, `HasOutput`);
input defaults `workflow/common/util.go` (`ProcessArgs`, `SubstituteParams`); DAG
dependencies `workflow/common/ancestry.go` (`GetTaskDependencies`). Not ported
(the renders use none of it): workflow template references, hooks, metrics,
artifact locations, container sets, resource manifests, plugins.

The server runs it on lint (`Opts{Lint: true}`: workflow arguments may lack a
value) and on create (`Opts{}`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

Json = Mapping[str, Any]

_FIELD_NAME = re.compile(r"[a-zA-Z0-9][-a-zA-Z0-9]*")
_FIELD_NAME_ERROR = (
    "name must consist of alpha-numeric characters or '-', and must start with an "
    "alpha-numeric character (e.g. My-name1-2, 123-NAME)"
)
_PARAM_NAME = re.compile(r"[-a-zA-Z0-9_]+")
_PARAM_NAME_ERROR = (
    "Parameter/Artifact name must consist of alpha-numeric characters, '_' or '-' "
    "e.g. my_param_1, MY-PARAM-1"
)
# workflow/common/common.go GlobalVarValidWorkflowVariablePrefix: only these tags are checked.
_CHECKED_PREFIXES = ("item.", "steps.", "inputs.", "outputs.", "pod.", "workflow.", "tasks.")
# resolveAllVariables: prefixes resolved at run time, never refused.
_RUNTIME_PREFIXES = (
    "outputs.",
    "workflow.creationTimestamp",
    "workflow.scheduledTime",
    "workflow.duration",
    "tasks.name",
    "steps.name",
    "node.name",
)
_TYPES = (
    "container",
    "containerSet",
    "steps",
    "script",
    "resource",
    "dag",
    "suspend",
    "data",
    "http",
    "plugin",
)
_LEAF = {"container", "containerSet", "script", "resource", "data", "http", "plugin"}
_POD = {"container", "containerSet", "script", "resource", "data"}
_RETRY_POLICIES = {"Always", "OnError", "OnFailure", "OnTransientError", ""}
_TASK_NAME = re.compile(r"([a-zA-Z0-9][-a-zA-Z0-9]*?\.[A-Z][a-zA-Z]+)|([a-zA-Z0-9][-a-zA-Z0-9]*)")
_TASK_RESULT = re.compile(r"([a-zA-Z0-9][-a-zA-Z0-9]*?)\.([A-Z][a-zA-Z]+)")
_TASK_RESULTS = {
    "Succeeded",
    "Failed",
    "Errored",
    "Skipped",
    "Omitted",
    "Daemoned",
    "AnySucceeded",
    "AllFailed",
}
_PLACEHOLDER = "__argo__internal__placeholder"


class Invalid(Exception):
    """The validator's first complaint, in Argo's words."""


def validate_workflow(workflow: Json, *, lint: bool) -> None:
    """Raise `Invalid` as `validate.Workflow` would return an error (a schema-valid input)."""
    _Validator(workflow, lint).run()


def field_names_error(items: Sequence[Json] | None, *, params: bool = False) -> str | None:
    """`validateWorkflowFieldNames`: names present, well-formed, unique (suffix of a message)."""
    seen: set[str] = set()
    for i, item in enumerate(items or ()):
        name = str(item.get("name") or "")
        if not name:
            return f"[{i}].name is required"
        if params:
            wrong = [] if _PARAM_NAME.fullmatch(name) else [_PARAM_NAME_ERROR]
        else:
            wrong = _field_name_errors(name)
        if wrong:
            return f"[{i}].name: '{name}' is invalid: {';'.join(wrong)}"
        if name in seen:
            return f"[{i}].name '{name}' is not unique"
        seen.add(name)
    return None


def _field_name_errors(name: str) -> list[str]:
    """`isValidWorkflowFieldName`: at most 128 characters of the field-name alphabet."""
    errors = ["must be no more than 128 characters"] if len(name) > 128 else []
    return errors + ([] if _FIELD_NAME.fullmatch(name) else [_FIELD_NAME_ERROR])


def tags(text: str) -> Iterator[str]:
    """The `{{...}}` tags fasttemplate finds in `text`; expressions (`{{=...}}`) are skipped."""
    start = 0
    while (begin := text.find("{{", start)) >= 0:
        end = text.find("}}", begin + 2)
        if end < 0:
            raise Invalid(
                f"Cannot find end tag='}}}}' in the template={text!r} starting from {begin}"
            )
        tag = text[begin + 2 : end]
        if not tag.startswith("="):
            yield tag
        start = end + 2


def unresolved(scope: set[str], text: str) -> str | None:
    """`resolveAllVariables`: the first checked tag the scope cannot resolve, as Argo says it."""
    for tag in tags(text):
        name = tag.strip()
        if not name.startswith(_CHECKED_PREFIXES) or name in scope:
            continue
        if (name == "item" or name.startswith("item.")) and "item.*" in scope:
            continue  # withParam: any item field may exist
        if name.startswith("workflow.outputs.parameters.") and "workflow.outputs.parameters.*" in (
            scope
        ):
            continue
        if name.startswith(_RUNTIME_PREFIXES):
            continue
        return f"failed to resolve {{{{{tag}}}}}"
    return None


def _kind(template: Json) -> str | None:
    kinds = [kind for kind in _TYPES if template.get(kind) is not None]
    return kinds[0] if len(kinds) == 1 else None


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _arguments_error(prefix: str, arguments: Json | None, allow_empty: bool) -> str | None:
    """`validateArguments`: names, and a value (or valueFrom) for every parameter."""
    arguments = arguments or {}
    for field in ("parameters", "artifacts"):
        wrong = field_names_error(arguments.get(field), params=True)
        if wrong:
            return f"{prefix}{field}{wrong}"
    for param in arguments.get("parameters") or ():
        name = param.get("name")
        if param.get("value") is None and param.get("valueFrom") is None and not allow_empty:
            return f"{prefix}{name}.value or {prefix}{name}.valueFrom is required"
        enum = param.get("enum")
        if enum is not None and param.get("value") is not None and param["value"] not in enum:
            return f"{prefix}{name}.value should be present in {prefix}{name}.enum list"
    return None


class _Validator:
    def __init__(self, workflow: Json, lint: bool) -> None:
        self.workflow = workflow
        self.spec: Json = workflow.get("spec") or {}
        self.lint = lint
        self.templates = {t.get("name"): t for t in self.spec.get("templates") or ()}
        self.validated: set[str] = set()
        self.globals = self._globals()

    def _globals(self) -> set[str]:
        """`newTemplateValidationCtx` and `Workflow`: what every template may refer to."""
        metadata = self.workflow.get("metadata") or {}
        found = {
            "workflow.name",
            "workflow.namespace",
            "workflow.mainEntrypoint",
            "workflow.serviceAccountName",
            "workflow.uid",
            "workflow.status",
            "workflow.annotations",
            "workflow.annotations.json",
            "workflow.labels",
            "workflow.labels.json",
        }
        params = (self.spec.get("arguments") or {}).get("parameters") or ()
        if params:
            found |= {"workflow.parameters", "workflow.parameters.json"}
        found |= {f"workflow.parameters.{p['name']}" for p in params if p.get("name")}
        meta = self.spec.get("workflowMetadata") or {}
        annotations = {**(metadata.get("annotations") or {}), **(meta.get("annotations") or {})}
        labels = {
            **(metadata.get("labels") or {}),
            **(meta.get("labels") or {}),
            **(meta.get("labelsFrom") or {}),
        }
        found |= {f"workflow.annotations.{key}" for key in annotations}
        found |= {f"workflow.labels.{key}" for key in labels}
        if self.spec.get("priority") is not None:
            found.add("workflow.priority")
        if self.spec.get("onExit"):
            found.add("workflow.failures")
        return found

    def run(self) -> None:
        name = str((self.workflow.get("metadata") or {}).get("name") or "")
        if len(name) > 63:
            raise Invalid(
                f"workflow name {json.dumps(name)} must not be more than 63 characters long "
                f"(currently {len(name)})"
            )
        wrong = field_names_error(self.spec.get("templates"))
        if wrong:
            raise Invalid(f"spec.templates{wrong}")
        arguments = self.spec.get("arguments")
        wrong = _arguments_error("spec.arguments.", arguments, allow_empty=self.lint)
        if wrong:
            raise Invalid(wrong)
        entrypoint = self.spec.get("entrypoint") or ""
        if not entrypoint:
            raise Invalid("spec.entrypoint is required")
        self.holder(entrypoint, arguments, real_arguments=True)
        if self.spec.get("onExit"):
            self.holder(self.spec["onExit"], arguments, real_arguments=True)
        for template in self.spec.get("templates") or ():
            try:
                self.holder(template["name"], None, real_arguments=False)
            except Invalid as err:
                raise Invalid(f"templates.{template['name']} {err}") from None

    def holder(self, name: str, arguments: Json | None, *, real_arguments: bool) -> Json:
        """`validateTemplateHolder`: the named template exists and is valid with these arguments
        (FakeArguments, which supply every input, when not `real_arguments`)."""
        template = self.templates.get(name)
        if template is None:
            raise Invalid(f"template name '{name}' undefined")
        policy = (template.get("retryStrategy") or {}).get("retryPolicy", "")
        if policy not in _RETRY_POLICIES:
            raise Invalid(f"{policy} is not a valid RetryPolicy")
        self.template(template, arguments, real_arguments)
        return template

    def template(self, template: Json, arguments: Json | None, real_arguments: bool) -> None:
        """`validateTemplate`: one kind, inputs, arguments supplied; then its body, once."""
        name = template.get("name")
        kind = _kind(template)
        if kind is None:
            several = any(template.get(k) is not None for k in _TYPES)
            what = "multiple template types specified" if several else "template type unspecified"
            raise Invalid(
                f"templates.{name} {what}. choose one of: container, containerSet, steps, "
                "script, resource, dag, suspend, template, template ref"
            )
        inputs = template.get("inputs") or {}
        for field in ("parameters", "artifacts"):
            wrong = field_names_error(inputs.get(field), params=True)
            if wrong:
                raise Invalid(f"templates.{name}.inputs.{field}{wrong}")
        if real_arguments:
            self.inputs_supplied(template, arguments or {})
        if name in self.validated:
            return
        self.validated.add(name)
        scope = self.template_scope(template, kind) | self.globals
        if kind == "steps":
            self.steps(template, scope)
        elif kind == "dag":
            self.dag(template, scope)
        else:
            self.leaf(template, scope)
        self.outputs(template, kind, scope)

    def inputs_supplied(self, template: Json, arguments: Json) -> None:
        """`ProcessArgs`/`SubstituteParams`: every input parameter gets a value."""
        given = {p.get("name"): p for p in arguments.get("parameters") or ()}
        for param in (template.get("inputs") or {}).get("parameters") or ():
            arg = given.get(param["name"]) or {}
            has = any(
                source.get(key) is not None
                for source in (param, arg)
                for key in ("value", "default", "valueFrom")
            )
            if not has:
                raise Invalid(f"inputs.parameters.{param['name']} had no value")
        artifacts = {a.get("name") for a in arguments.get("artifacts") or ()}
        for artifact in (template.get("inputs") or {}).get("artifacts") or ():
            located = set(artifact) - {"name", "path", "mode", "optional", "recurseMode"}
            if not artifact.get("optional") and not located and artifact["name"] not in artifacts:
                raise Invalid(f"inputs.artifacts.{artifact['name']} was not supplied")

    def template_scope(self, template: Json, kind: str) -> set[str]:
        """`validateInputs` and `validateTemplate`: inputs, pod name, retries, output paths."""
        inputs = template.get("inputs") or {}
        scope = {f"inputs.parameters.{p['name']}" for p in inputs.get("parameters") or ()}
        if inputs.get("parameters"):
            scope.add("inputs.parameters")
        for artifact in inputs.get("artifacts") or ():
            scope.add(f"inputs.artifacts.{artifact['name']}")
            if kind in _LEAF:
                scope.add(f"inputs.artifacts.{artifact['name']}.path")
        if kind in _POD:
            scope.add("pod.name")
        if template.get("retryStrategy") is not None:
            scope |= {"retries"} | {
                f"lastRetry.{field}" for field in ("exitCode", "status", "duration", "message")
            }
        if kind in _LEAF:
            outputs = template.get("outputs") or {}
            scope |= {
                f"outputs.artifacts.{a['name']}.path"
                for a in outputs.get("artifacts") or ()
                if a.get("path")
            }
            scope |= {
                f"outputs.parameters.{p['name']}.path"
                for p in outputs.get("parameters") or ()
                if (p.get("valueFrom") or {}).get("path")
            }
        return scope

    def leaf(self, template: Json, scope: set[str]) -> None:
        """`validateLeaf`: every variable resolves, an image, no parallelism, one mount a path."""
        name = template.get("name")
        wrong = unresolved(scope, _dumps(template))
        if wrong:
            raise Invalid(f"templates.{name}: {wrong}")
        defaults = self.spec.get("templateDefaults") or {}
        for kind in ("container", "script"):
            image = (template.get(kind) or {}).get("image") or (defaults.get(kind) or {}).get(
                "image"
            )
            if template.get(kind) is not None and not image:
                raise Invalid(f"templates.{name}.{kind}.image may not be empty")
        mounts: dict[str, str] = {}
        for i, mount in enumerate((template.get("container") or {}).get("volumeMounts") or ()):
            path = mount.get("mountPath")
            if path in mounts:
                raise Invalid(
                    f"templates.{name}.container.volumeMounts[{i}].mountPath '{path}' already "
                    f"mounted in {mounts[path]}"
                )
            mounts[path] = f"container.volumeMounts.{mount.get('name')}"
        if template.get("parallelism") is not None:
            raise Invalid(f"templates.{name}.parallelism is only valid for steps and dag templates")

    def non_leaf(self, template: Json) -> None:
        if template.get("activeDeadlineSeconds") is not None:
            raise Invalid(
                f"templates.{template.get('name')}.activeDeadlineSeconds is only valid for leaf "
                "templates"
            )

    def steps(self, template: Json, scope: set[str]) -> None:
        """`validateSteps`: named, unique steps whose templates and variables resolve, each
        seeing the outputs of the steps before it."""
        self.non_leaf(template)
        name = template.get("name")
        seen: set[str] = set()
        for i, group in enumerate(template.get("steps") or ()):
            for step in group:
                step_name = step.get("name") or ""
                where = f"templates.{name}.steps[{i}]"
                if not step_name:
                    raise Invalid(f"{where}.name is required")
                if step_name in seen:
                    raise Invalid(f"{where}.name '{step_name}' is not unique")
                wrong = _field_name_errors(re.sub(rf"{_PLACEHOLDER}-\d+", "x", step_name))
                if wrong:
                    raise Invalid(f"{where}.name '{step_name}' is invalid: {';'.join(wrong)}")
                seen.add(step_name)
                scope.add(f"steps.{step_name}.status")
                self.items(step, scope, f"{where}.{step_name}")
                prefix = f"{where}.{step_name}.arguments."
                wrong = _arguments_error(prefix, step.get("arguments"), allow_empty=False)
                if wrong:
                    raise Invalid(wrong)
                called = self.called(step, f"{where}.{step_name}", None, real=False)
                wrong = unresolved(scope, _dumps(step))
                if wrong:
                    raise Invalid(f"templates.{name}.steps {wrong}")
                aggregate = bool(step.get("withItems") or step.get("withParam"))
                self.add_outputs(scope, "steps", step_name, called, aggregate)
                self.called(step, f"{where}.{step_name}", step.get("arguments"), real=True)

    def called(self, call: Json, where: str, arguments: Json | None, *, real: bool) -> Json:
        try:
            return self.holder(str(call.get("template") or ""), arguments, real_arguments=real)
        except Invalid as err:
            raise Invalid(f"{where} {err}") from None

    def items(self, call: Json, scope: set[str], where: str) -> None:
        """`addItemsToScope`: at most one loop; `item` (any field, for withParam) in scope."""
        loops = [key for key in ("withItems", "withParam", "withSequence") if call.get(key)]
        if len(loops) > 1:
            raise Invalid(
                f"{where} only one of withItems, withParam, withSequence can be specified"
            )
        if call.get("withItems"):
            for item in call["withItems"]:
                if isinstance(item, dict):
                    scope |= {f"item.{key}" for key in item}
                elif isinstance(item, list):
                    scope |= {f"item.[{i}]" for i in range(len(item))}
                else:
                    scope.add("item")
        elif call.get("withParam"):
            scope |= {"item", "item.*"}
        elif call.get("withSequence"):
            scope.add("item")

    def add_outputs(
        self, scope: set[str], kind: str, name: str, template: Json, aggregate: bool
    ) -> None:
        """`addOutputsToScope`: what `steps.NAME.*` / `tasks.NAME.*` may name afterwards."""
        ref = f"{kind}.{name}"
        scope |= {f"{ref}.{field}" for field in ("id", "startedAt", "finishedAt", "hostNodeName")}
        if template.get("daemon"):
            scope.add(f"{ref}.ip")
        template_kind = _kind(template)
        if template_kind in {"container", "script", "data", "http", "plugin"}:
            scope |= {f"{ref}.outputs.result", f"{ref}.exitCode"}
        outputs = template.get("outputs") or {}
        for param in outputs.get("parameters") or ():
            scope.add(f"{ref}.outputs.parameters.{param['name']}")
            if param.get("globalName"):
                self.globals.add(f"workflow.outputs.parameters.{param['globalName']}")
        for artifact in outputs.get("artifacts") or ():
            scope.add(f"{ref}.outputs.artifacts.{artifact['name']}")
            if artifact.get("globalName"):
                self.globals.add(f"workflow.outputs.artifacts.{artifact['globalName']}")
        if aggregate:
            scope.add(f"{ref}.outputs.parameters")
            if template_kind in {"script", "containerSet"}:
                scope |= {f"{ref}.outputs.result", f"{ref}.exitCode"}

    def dag(self, template: Json, scope: set[str]) -> None:
        """`validateDAG`: tasks exist, are named once, depend on defined tasks without cycles,
        call templates that resolve, and refer to variables in scope."""
        self.non_leaf(template)
        name = template.get("name")
        tasks = list((template.get("dag") or {}).get("tasks") or ())
        if not tasks:
            raise Invalid(f"templates.{name} must have at least one task")
        wrong = field_names_error(tasks)
        if wrong:
            raise Invalid(f"templates.{name}.tasks{wrong}")
        by_name = {task["name"]: task for task in tasks}
        depends = {task["name"]: _dependencies(task) for task in tasks}
        using_depends = any(task.get("depends") for task in tasks)
        called: dict[str, Json] = {}
        for task in tasks:
            task_name = task["name"]
            where = f"templates.{name}.tasks.{task_name}"
            if (using_depends or task.get("dependencies")) and task_name[0].isdigit():
                raise Invalid(
                    f"{where} name cannot begin with a digit when using either 'depends' or "
                    "'dependencies'"
                )
            if using_depends and task.get("dependencies"):
                raise Invalid(
                    f"templates.{name} cannot use both 'depends' and 'dependencies' in the same "
                    "DAG template"
                )
            called[task_name] = self.called(task, where, None, real=False)
            aggregate = bool(task.get("withItems") or task.get("withParam"))
            self.add_outputs(scope, "tasks", task_name, called[task_name], aggregate)
            for other, result in _TASK_RESULT.findall(task.get("depends") or ""):
                if result not in _TASK_RESULTS:
                    raise Invalid(f"{where} task result '{result}' for task '{other}' is invalid")
            for dependency in depends[task_name]:
                if dependency not in by_name:
                    raise Invalid(f"{where} dependency '{dependency}' not defined")
        _no_cycles(name, depends)
        for task in tasks:
            task_name = task["name"]
            where = f"templates.{name}.tasks.{task_name}"
            ancestors = _ancestry(task_name, depends)
            task_scope = set(scope)
            for ancestor in ancestors:
                task_scope.add(f"tasks.{ancestor}.status")
                aggregate = bool(
                    by_name[ancestor].get("withItems") or by_name[ancestor].get("withParam")
                )
                self.add_outputs(task_scope, "tasks", ancestor, called[ancestor], aggregate)
            self.items(task, task_scope, where)
            wrong = unresolved(task_scope, _dumps(task))
            if wrong:
                raise Invalid(f"{where} {wrong}")
            prefix = f"{where}.arguments."
            wrong = _arguments_error(prefix, task.get("arguments"), allow_empty=False)
            if wrong:
                raise Invalid(wrong)
            for param in (task.get("arguments") or {}).get("parameters") or ():
                value = str(param.get("value") or "")
                if value.startswith("{{tasks.") and value.split(".")[1] not in ancestors:
                    raise Invalid(
                        f"{where} missing dependency '{value.split('.')[1]}' for parameter "
                        f"'{param['name']}'"
                    )
            self.called(task, where, task.get("arguments"), real=True)

    def outputs(self, template: Json, kind: str, scope: set[str]) -> None:
        """`validateOutputs`: names, variables, and where each output parameter comes from."""
        name = template.get("name")
        outputs = template.get("outputs") or {}
        for field in ("parameters", "artifacts"):
            wrong = field_names_error(outputs.get(field), params=True)
            if wrong:
                raise Invalid(f"templates.{name}.outputs.{field} {wrong}")
        wrong = unresolved(scope, _dumps(outputs))
        if wrong:
            raise Invalid(f"templates.{name}.outputs {wrong}")
        for param in outputs.get("parameters") or ():
            where = f"templates.{name}.outputs.parameters.{param['name']}"
            source = param.get("valueFrom")
            if source is not None and param.get("value") is not None:
                raise Invalid(f"{where} has both valueFrom and value specified, choose one")
            if source is None and param.get("value") is None:
                raise Invalid(f"{where} does not have valueFrom or value specified")
            if source is None:
                continue
            if kind in {"container", "containerSet", "script"} and not source.get("path"):
                raise Invalid(f"{where}.path must be specified for {_go_type(kind)} templates")
            if kind in {"steps", "dag"} and not (
                source.get("parameter") or source.get("expression")
            ):
                raise Invalid(
                    f"{where}.parameter or expression must be specified for "
                    f"{_go_type(kind)} templates"
                )


def _go_type(kind: str) -> str:
    """`TemplateType` as Argo prints it (`Container`, `Steps`, `DAG`, ...)."""
    return "DAG" if kind == "dag" else kind[0].upper() + kind[1:]


def _dependencies(task: Json) -> list[str]:
    """`GetTaskDependencies`: the tasks a `depends` expression (or `dependencies`) names."""
    if not task.get("depends"):
        return list(task.get("dependencies") or ())
    found = []
    for with_result, bare in _TASK_NAME.findall(task["depends"]):
        found.append(with_result.split(".")[0] if with_result else bare)
    return list(dict.fromkeys(found))


def _ancestry(name: str, depends: Mapping[str, list[str]]) -> list[str]:
    """Every task `name` depends on, directly or not (`GetTaskAncestry`)."""
    seen: dict[str, None] = {}
    pending = list(depends.get(name, ()))
    while pending:
        task = pending.pop()
        if task not in seen:
            seen[task] = None
            pending.extend(depends.get(task, ()))
    return list(seen)


def _no_cycles(template: str, depends: Mapping[str, list[str]]) -> None:
    """`verifyNoCycles`, with its message."""
    done: set[str] = set()

    def visit(task: str, path: list[str]) -> None:
        if task in done:
            return
        for dependency in depends.get(task, ()):
            if dependency in path:
                raise Invalid(
                    f"templates.{template}.tasks dependency cycle detected: "
                    f"{'->'.join(path)}->{dependency}"
                )
            visit(dependency, [*path, dependency])
        done.add(task)

    for task in depends:
        visit(task, [])
