"""A corpus of invalid, hostile and borderline recipes, each with the exact problems expected.

Every case is a small repository (path -> content) written to a temporary
directory; the recipe under test is `recipes/r` unless the case says otherwise.
Expected lines are `str(Problem)`: `path:line:column: [warning: ]key.path: sentence`,
in the order `load_recipe` reports them. A case whose recipe loads must list
exactly its warnings.
"""

# ruff: noqa: E501  (the corpus is a table: one problem line per row reads best)
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ogdc_hooks.recipes.load import LoadPolicy, load_recipe
from ogdc_hooks.recipes.problems import RecipeInvalid
from tests.recipes.conftest import FileTree, Link, materialise

META = "recipes/r/meta.yml"
SCRIPT = "recipes/r/recipe.sh"
GOOD_SCRIPT = "gdalinfo /input_dir/in.tif\n"
URL_INPUT = """\
input:
  params:
    - type: url
      value: https://example.org/data/in.tif
"""


Content = str | bytes | Link | None


def shell(meta: str | bytes, script: Content = GOOD_SCRIPT, **more: Content) -> dict[str, Content]:
    """A recipe `recipes/r` with this meta.yml and recipe.sh (None: no recipe.sh)."""
    files: dict[str, Content] = {META: meta}
    if script is not None:
        files[SCRIPT] = script
    files.update({f"recipes/r/{name}": content for name, content in more.items()})
    return files


def viz(
    workflow_extra: str = "", inputs: str = "", output: str = "", **more: Content
) -> dict[str, Content]:
    meta = (
        "name: Viz\n"
        "workflow:\n"
        "  type: visualization\n"
        f"{workflow_extra}"
        "input:\n"
        "  params:\n"
        "    - value: https://example.org/ice_basins.gpkg\n"
        f"{inputs}{output}"
    )
    return {META: meta, **{f"recipes/r/{name}": content for name, content in more.items()}}


@dataclass(frozen=True)
class Case:
    id: str
    files: FileTree
    expected: list[str]
    recipe: str = "recipes/r"
    policy: LoadPolicy = field(default_factory=LoadPolicy)


ALLOWLIST = LoadPolicy(workflow_pvc_name="workflow-pvc", allowed_input_pvcs=("archive", "scratch"))

CASES = [
    # --- name -----------------------------------------------------------------------------
    Case(
        "name-with-underscore",
        shell(f"name: seal_tags\nworkflow:\n  type: shell\n{URL_INPUT}"),
        [f"{META}:1:7: name: 'seal_tags' may only contain letters, digits, spaces, '.' and '-'"],
    ),
    Case(
        "name-missing",
        shell(f"workflow:\n  type: shell\n{URL_INPUT}"),
        [f"{META}:1:1: name: required key is missing"],
    ),
    Case(
        "name-empty",
        shell(f'name: ""\nworkflow:\n  type: shell\n{URL_INPUT}'),
        [f"{META}:1:7: name: must not be empty"],
    ),
    Case(
        "name-a-number",
        shell(f"name: 2024\nworkflow:\n  type: shell\n{URL_INPUT}"),
        [f"{META}:1:7: name: must be a string, not the number 2024; put it in quotes"],
    ),
    Case(
        "name-a-date",
        shell(f"name: 2024-09-01\nworkflow:\n  type: shell\n{URL_INPUT}"),
        [f"{META}:1:7: name: must be a string, not the date 2024-09-01; put it in quotes"],
    ),
    Case(
        "name-left-empty",
        shell(f"name:\nworkflow:\n  type: shell\n{URL_INPUT}"),
        [f"{META}:1:1: name: must be a string, not an empty value"],
    ),
    # --- unknown keys and structure -------------------------------------------------------
    Case(
        "unknown-key-close-to-a-known-one",
        shell(f"name: x\nworkflow:\n  type: shell\n{URL_INPUT}outputs:\n  type: pvc\n"),
        [f"{META}:8:1: outputs: unknown key; did you mean 'output'?"],
    ),
    Case(
        "unknown-key",
        shell(f"name: x\ncolour: red\nworkflow:\n  type: shell\n{URL_INPUT}"),
        [f"{META}:2:1: colour: unknown key; allowed keys are name, workflow, input, output"],
    ),
    Case(
        "unknown-key-numeric",
        shell(f"name: x\n1: one\nworkflow:\n  type: shell\n{URL_INPUT}"),
        [f"{META}:2:1: 1: unknown key; allowed keys are name, workflow, input, output"],
    ),
    Case(
        "duplicate-key",
        shell(f"name: x\nworkflow:\n  type: shell\n{URL_INPUT}name: y\n"),
        [f"{META}:8:1: name: duplicate key; it is already given on line 1"],
    ),
    Case(
        "key-that-is-a-list",
        shell(f"name: x\n? [a, b]\n: c\nworkflow:\n  type: shell\n{URL_INPUT}"),
        [f"{META}:2:3: a key must be a plain word, not a list"],
    ),
    # --- workflow ---------------------------------------------------------------------------
    Case(
        "workflow-missing",
        shell(f"name: x\n{URL_INPUT}"),
        [f"{META}:1:1: workflow: required key is missing"],
    ),
    Case(
        "workflow-a-string",
        shell(f"name: x\nworkflow: shell\n{URL_INPUT}"),
        [f"{META}:2:11: workflow: must be a mapping, not the string 'shell'"],
    ),
    Case(
        "workflow-type-missing",
        shell(f"name: x\nworkflow:\n  sh_file: recipe.sh\n{URL_INPUT}"),
        [f"{META}:3:3: workflow.type: required key is missing (one of shell, visualization)"],
    ),
    Case(
        "workflow-type-unknown",
        shell(f"name: x\nworkflow:\n  type: python\n{URL_INPUT}"),
        [f"{META}:3:9: workflow.type: 'python' is not one of shell, visualization"],
    ),
    Case(
        "workflow-key-misspelt",
        shell(f"name: x\nworkflow:\n  type: shell\n  sh_fil: run.sh\n{URL_INPUT}"),
        [f"{META}:4:3: workflow.sh_fil: unknown key; did you mean 'sh_file'?"],
    ),
    # --- the shell script -------------------------------------------------------------------
    Case(
        "script-missing",
        shell(f"name: x\nworkflow:\n  type: shell\n  sh_file: run.sh\n{URL_INPUT}"),
        [f"{META}:4:12: workflow.sh_file: file recipes/r/run.sh does not exist"],
    ),
    Case(
        "default-script-missing",
        shell(f"name: x\nworkflow:\n  type: shell\n{URL_INPUT}", script=None),
        [f"{META}:3:3: workflow.sh_file: file recipes/r/recipe.sh does not exist"],
    ),
    Case(
        "script-traversal",
        {
            **shell(f"name: x\nworkflow:\n  type: shell\n  sh_file: ../s/recipe.sh\n{URL_INPUT}"),
            "recipes/s/recipe.sh": GOOD_SCRIPT,
        },
        [
            f"{META}:4:12: workflow.sh_file: '../s/recipe.sh' must be a path inside the recipe directory"
        ],
    ),
    Case(
        "script-absolute",
        shell(f"name: x\nworkflow:\n  type: shell\n  sh_file: /etc/passwd\n{URL_INPUT}"),
        [
            f"{META}:4:12: workflow.sh_file: '/etc/passwd' must be a path inside the recipe directory"
        ],
    ),
    Case(
        "script-symlink-out-of-repo",
        shell(
            f"name: x\nworkflow:\n  type: shell\n{URL_INPUT}", script=Link("{outside}/secret.sh")
        ),
        [
            f"{META}:3:3: workflow.sh_file: recipes/r/recipe.sh leads outside the repository through a symlink"
        ],
    ),
    Case(
        "script-symlink-loop",
        shell(f"name: x\nworkflow:\n  type: shell\n{URL_INPUT}", script=Link("recipe.sh")),
        [f"{META}:3:3: workflow.sh_file: recipes/r/recipe.sh is a symlink loop"],
    ),
    Case(
        "script-is-a-directory",
        shell(
            f"name: x\nworkflow:\n  type: shell\n{URL_INPUT}", script=None, **{"recipe.sh": None}
        ),
        [f"{META}:3:3: workflow.sh_file: recipes/r/recipe.sh is not a regular file"],
    ),
    Case(
        "script-huge",
        shell(f"name: x\nworkflow:\n  type: shell\n{URL_INPUT}", script="echo x\n" * 150_000),
        [f"{SCRIPT}:1:1: this file is larger than 1 MiB, the limit for recipe files"],
    ),
    Case(
        "script-not-utf8",
        shell(f"name: x\nworkflow:\n  type: shell\n{URL_INPUT}", script=b"echo ok\necho caf\xe9\n"),
        [f"{SCRIPT}:2:9: this file is not valid UTF-8 (byte 0xe9)"],
    ),
    Case(
        "script-with-nul",
        shell(f"name: x\nworkflow:\n  type: shell\n{URL_INPUT}", script="echo a\x00b\n"),
        [f"{SCRIPT}:1:7: this file contains a NUL character; it must be text"],
    ),
    Case(
        "script-only-comments",
        shell(
            f"name: x\nworkflow:\n  type: shell\n{URL_INPUT}",
            script="#!/bin/sh\n\n   \n    # indented comment\n\t# tab comment\n",
        ),
        [f"{SCRIPT}:1:1: no commands: every line is blank or a comment"],
    ),
    Case(
        "script-crlf",
        shell(
            f"name: x\nworkflow:\n  type: shell\n{URL_INPUT}",
            script="# c\r\necho one\r\necho two\r\n",
        ),
        [
            f"{SCRIPT}:1:4: warning: Windows line endings (CRLF): the carriage returns are removed from the commands"
        ],
    ),
    Case(
        "script-carriage-return-inside-a-line",
        shell(f"name: x\nworkflow:\n  type: shell\n{URL_INPUT}", script="echo one\recho two\n"),
        [f"{SCRIPT}:1:9: a carriage return (CR) inside a line is not allowed"],
    ),
    # --- parallel ---------------------------------------------------------------------------
    Case(
        "partition-size-zero",
        shell(
            f"name: x\nworkflow:\n  type: shell\n  parallel:\n    enabled: true\n    partition_size: 0\n{URL_INPUT}"
        ),
        [f"{META}:6:21: workflow.parallel.partition_size: must be at least 1, not 0"],
    ),
    Case(
        "partition-size-words",
        shell(
            f"name: x\nworkflow:\n  type: shell\n  parallel:\n    partition_size: many\n{URL_INPUT}"
        ),
        [
            f"{META}:5:21: workflow.parallel.partition_size: must be a whole number, not the string 'many'"
        ],
    ),
    Case(
        "max-parallelism-negative",
        shell(
            f"name: x\nworkflow:\n  type: shell\n  parallel: {{enabled: true, max_parallelism: -2}}\n{URL_INPUT}"
        ),
        [f"{META}:4:46: workflow.parallel.max_parallelism: must be at least 1, not -2"],
    ),
    Case(
        "parallel-enabled-maybe",
        shell(f"name: x\nworkflow:\n  type: shell\n  parallel:\n    enabled: maybe\n{URL_INPUT}"),
        [f"{META}:5:14: workflow.parallel.enabled: must be true or false, not the string 'maybe'"],
    ),
    Case(
        "partition-strategy-unknown",
        shell(
            f"name: x\nworkflow:\n  type: shell\n  parallel:\n    partition_strategy: chunks\n{URL_INPUT}"
        ),
        [f"{META}:5:25: workflow.parallel.partition_strategy: 'chunks' is not one of files"],
    ),
    # --- inputs -----------------------------------------------------------------------------
    Case(
        "input-missing",
        shell("name: x\nworkflow:\n  type: shell\n"),
        [f"{META}:1:1: input: required key is missing"],
    ),
    Case(
        "params-empty",
        shell("name: x\nworkflow:\n  type: shell\ninput:\n  params: []\n"),
        [f"{META}:5:11: input.params: must not be empty"],
    ),
    Case(
        "params-a-mapping",
        shell("name: x\nworkflow:\n  type: shell\ninput:\n  params:\n    type: url\n"),
        [f"{META}:6:5: input.params: must be a list, not a mapping"],
    ),
    Case(
        "param-type-unknown",
        shell(
            "name: x\nworkflow:\n  type: shell\ninput:\n  params:\n    - type: ftp\n      value: ftp://example.org/x\n"
        ),
        [f"{META}:6:13: input.params[0].type: 'ftp' is not one of url, dataone, pvc_mount"],
    ),
    Case(
        "param-type-not-a-string",
        shell("name: x\nworkflow:\n  type: shell\ninput:\n  params:\n    - type: 3\n"),
        [f"{META}:6:13: input.params[0].type: 3 is not one of url, dataone, pvc_mount"],
    ),
    Case(
        "param-without-type-or-value",
        shell(
            "name: x\nworkflow:\n  type: shell\ninput:\n  params:\n    - url: https://example.org/a.tif\n"
        ),
        [
            f"{META}:6:7: input.params[0].type: required key is missing (one of url, dataone, pvc_mount)"
        ],
    ),
    Case(
        "param-a-string",
        shell(
            "name: x\nworkflow:\n  type: shell\ninput:\n  params:\n    - https://example.org/a.tif\n"
        ),
        [
            f"{META}:6:7: input.params[0]: must be a mapping, not the string 'https://example.org/a.tif'"
        ],
    ),
    Case(
        "url-ftp",
        shell(
            "name: x\nworkflow:\n  type: shell\ninput:\n  params:\n    - value: ftp://example.org/x.tif\n"
        ),
        [
            f"{META}:6:14: input.params[0].value: 'ftp://example.org/x.tif' is not an absolute http or https URL"
        ],
    ),
    Case(
        "url-relative",
        shell("name: x\nworkflow:\n  type: shell\ninput:\n  params:\n    - value: data/x.tif\n"),
        [f"{META}:6:14: input.params[0].value: 'data/x.tif' is not an absolute http or https URL"],
    ),
    Case(
        "url-file-scheme",
        shell(
            "name: x\nworkflow:\n  type: shell\ninput:\n  params:\n    - value: file:///etc/passwd\n"
        ),
        [
            f"{META}:6:14: input.params[0].value: 'file:///etc/passwd' is not an absolute http or https URL"
        ],
    ),
    Case(
        "url-without-file-name",
        shell(
            "name: x\nworkflow:\n  type: shell\ninput:\n  params:\n    - value: https://example.org/data/\n"
        ),
        [
            f"{META}:6:14: input.params[0].value: 'https://example.org/data/' does not end in a usable file name"
        ],
    ),
    Case(
        "url-file-name-with-encoded-slash",
        shell(
            "name: x\nworkflow:\n  type: shell\ninput:\n  params:\n    - value: https://example.org/..%2Fetc%2Fpasswd\n"
        ),
        [
            f"{META}:6:14: input.params[0].value: 'https://example.org/..%2Fetc%2Fpasswd' does not end in a usable file name"
        ],
    ),
    Case(
        "url-dot-dot",
        shell(
            "name: x\nworkflow:\n  type: shell\ninput:\n  params:\n    - value: https://example.org/a/%2E%2E\n"
        ),
        [
            f"{META}:6:14: input.params[0].value: 'https://example.org/a/%2E%2E' does not end in a usable file name"
        ],
    ),
    Case(
        "urls-saved-under-one-name",
        shell(
            "name: x\nworkflow:\n  type: shell\ninput:\n  params:\n"
            "    - value: https://a.example.org/data.tif\n"
            "    - value: https://b.example.org/other.tif\n"
            "    - value: https://c.example.org/v2/data.tif?x=1\n"
        ),
        [
            f"{META}:8:14: input.params[2].value: would be saved as 'data.tif' like input.params[0]; url inputs need different file names"
        ],
    ),
    Case(
        "dataone-without-identifier",
        shell(
            "name: x\nworkflow:\n  type: shell\ninput:\n  params:\n    - type: dataone\n      filename: '*.tif'\n"
        ),
        [f"{META}:6:7: input.params[0].dataset_identifier: required key is missing"],
    ),
    Case(
        "dataone-with-value",
        shell(
            "name: x\nworkflow:\n  type: shell\ninput:\n  params:\n    - type: dataone\n      dataset_identifier: doi:10.1/x\n      value: https://example.org/a.tif\n"
        ),
        [
            f"{META}:8:7: input.params[0].value: unknown key; allowed keys are type, dataset_identifier, filename"
        ],
    ),
    Case(
        "pvc-claim-not-allowed",
        shell(
            "name: x\nworkflow:\n  type: shell\ninput:\n  params:\n    - type: pvc_mount\n      claim_name: someone-elses-data\n      path: /archive\n"
        ),
        [
            f"{META}:7:19: input.params[0].claim_name: 'someone-elses-data' is not an allowed claim: only the workflow PVC 'cephfs-qgnet-ogdc-workflow-pvc' is (OGDC_ALLOWED_INPUT_PVCS lists no others)"
        ],
    ),
    Case(
        "pvc-claim-not-in-allowlist",
        shell(
            "name: x\nworkflow:\n  type: shell\ninput:\n  params:\n    - {type: pvc_mount, claim_name: other, path: data}\n"
        ),
        [
            f"{META}:6:37: input.params[0].claim_name: 'other' is not an allowed claim: allowed are the workflow PVC 'workflow-pvc' and 'archive', 'scratch' (OGDC_ALLOWED_INPUT_PVCS)"
        ],
        policy=ALLOWLIST,
    ),
    Case(
        "pvc-path-traversal",
        shell(
            "name: x\nworkflow:\n  type: shell\ninput:\n  params:\n    - type: pvc_mount\n      claim_name: cephfs-qgnet-ogdc-workflow-pvc\n      path: data/../../other\n"
        ),
        [f"{META}:8:13: input.params[0].path: 'data/../../other' must not contain '..'"],
    ),
    Case(
        "pvc-claim-name-invalid",
        shell(
            "name: x\nworkflow:\n  type: shell\ninput:\n  params:\n    - type: pvc_mount\n      claim_name: My_Claim\n      path: data\n"
        ),
        [
            f"{META}:7:19: input.params[0].claim_name: 'My_Claim' is not a valid claim name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)"
        ],
    ),
    Case(
        "pvc-mixed-with-url",
        shell(
            "name: x\nworkflow:\n  type: shell\ninput:\n  params:\n    - type: pvc_mount\n      claim_name: cephfs-qgnet-ogdc-workflow-pvc\n      path: data\n    - value: https://example.org/a.tif\n"
        ),
        [
            f"{META}:9:7: input.params[1].type: pvc_mount inputs cannot be mixed with url or dataone inputs"
        ],
    ),
    Case(
        "url-mixed-with-pvc",
        shell(
            "name: x\nworkflow:\n  type: shell\ninput:\n  params:\n    - type: dataone\n      dataset_identifier: doi:10.1/x\n    - type: pvc_mount\n      claim_name: archive\n      path: data\n"
        ),
        [
            f"{META}:8:13: input.params[1].type: pvc_mount inputs cannot be mixed with url or dataone inputs"
        ],
        policy=ALLOWLIST,
    ),
    # --- output -----------------------------------------------------------------------------
    Case(
        "output-type-unknown",
        shell(f"name: x\nworkflow:\n  type: shell\n{URL_INPUT}output:\n  type: s3\n"),
        [f"{META}:9:9: output.type: 's3' is not one of pvc, temporary, dataone"],
    ),
    Case(
        "output-dataone",
        shell(f"name: x\nworkflow:\n  type: shell\n{URL_INPUT}output:\n  type: dataone\n"),
        [
            f"{META}:9:9: warning: output.type: dataone output is not supported yet: the recipe validates, but submitting it fails until ogdc-hooks can publish to DataONE; use pvc or temporary output to run it now"
        ],
    ),
    Case(
        "output-dataone-id-without-dataone",
        shell(
            f"name: x\nworkflow:\n  type: shell\n{URL_INPUT}output:\n  type: temporary\n  dataone_id: doi:10.1/y\n"
        ),
        [
            f"{META}:10:3: warning: output.dataone_id: is ignored: output.type is 'temporary' and only dataone output uses it"
        ],
    ),
    # --- visualization ----------------------------------------------------------------------
    Case(
        "viz-temporary-output",
        viz(output="output:\n  type: temporary\n"),
        [
            f"{META}:8:9: output.type: 'temporary' output is not supported for visualization workflows; use pvc"
        ],
    ),
    Case(
        "viz-many-inputs-of-every-fetched-kind",
        viz(
            inputs="    - value: https://example.org/more.gpkg\n"
            "    - type: dataone\n      dataset_identifier: doi:10.1/x\n"
        ),
        [],
    ),
    Case(
        "viz-dataone-output-without-type",
        viz(output="output:\n  dataone_id: doi:10.1/y\n"),
        [
            f"{META}:8:3: warning: output.dataone_id: makes the output dataone; dataone output is not supported yet: the recipe validates, but submitting it fails until ogdc-hooks can publish to DataONE; use pvc or temporary output to run it now"
        ],
    ),
    Case(
        "viz-config-not-json",
        viz(
            "  config_file: config.json\n",
            **{"config.json": '{\n  "z_range": [0, 5],\n  "tms_id": WGS1984Quad\n}\n'},
        ),
        ["recipes/r/config.json:3:13: this file is not valid JSON: Expecting value"],
    ),
    Case(
        "viz-config-bad-zoom-levels",
        viz("  config_file: config.json\n", **{"config.json": '{"z_range": [5, 0]}\n'}),
        [
            "recipes/r/config.json:1:1: z_range of the visualization configuration must be two whole numbers [lowest, highest] with 0 <= lowest <= highest"
        ],
    ),
    Case(
        "viz-config-directory-outside",
        viz("  config_file: config.json\n", **{"config.json": '{"dir_staged": "../x"}\n'}),
        [
            "recipes/r/config.json:1:1: dir_staged of the visualization configuration must stay inside the recipe's directory and hold no '{{': '../x'"
        ],
    ),
    Case(
        "viz-config-missing",
        viz("  config_file: config.json\n"),
        [f"{META}:4:16: workflow.config_file: file recipes/r/config.json does not exist"],
    ),
    Case(
        "viz-config-traversal",
        viz("  config_file: ../../config.json\n", **{"../../config.json": "{}"}),
        [
            f"{META}:4:16: workflow.config_file: '../../config.json' must be a path inside the recipe directory"
        ],
    ),
    Case(
        "viz-config-huge",
        viz(
            "  config_file: config.json\n", **{"config.json": "[" + "0," * (5 * 1024 * 1024) + "0]"}
        ),
        ["recipes/r/config.json:1:1: this file is larger than 10 MiB, the limit for recipe files"],
    ),
    Case(
        "viz-parallel",
        viz("  parallel:\n    enabled: true\n    partition_size: 0\n"),
        [f"{META}:6:21: workflow.parallel.partition_size: must be at least 1, not 0"],
    ),
    Case(
        "viz-batch-size-is-ignored",
        viz("  batch_size: 250\n"),
        [
            f"{META}:4:3: warning: workflow.batch_size: is ignored: ogdc-runner 0.4 removed it; visualization recipes are split into partitions of input files by parallel.partition_size instead (default VIZ_WORKFLOW_DEFAULT_PARTITION_SIZE, 1000)"
        ],
    ),
    # --- YAML itself ------------------------------------------------------------------------
    Case(
        "yaml-syntax-error",
        shell("name: x\nworkflow:\n  type: shell\n   sh_file: x: y\n"),
        [f"{META}:4:11: YAML syntax error: mapping values are not allowed here"],
    ),
    Case(
        "yaml-tab-indentation",
        shell("name: x\nworkflow:\n\ttype: shell\n"),
        [f"{META}:3:1: YAML syntax error: found character '\\t' that cannot start any token"],
    ),
    Case(
        "yaml-unclosed-flow",
        shell("name: x\nworkflow: {type: shell\ninput: {}\n"),
        [f"{META}:3:6: YAML syntax error: expected ',' or '}}', but got ':'"],
    ),
    Case(
        "alias-bomb",
        shell(
            "a: &a [x, x, x, x, x, x, x, x, x]\n"
            "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
            "d: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        ),
        [f"{META}:1:4: YAML anchors and aliases (& and *) are not allowed"],
    ),
    Case(
        "merge-key-alias",
        shell(f"base: &base {{type: shell}}\nname: x\nworkflow:\n  <<: *base\n{URL_INPUT}"),
        [f"{META}:1:7: YAML anchors and aliases (& and *) are not allowed"],
    ),
    Case(
        "deep-nesting",
        shell("name: " + "[" * 200 + "]" * 200 + "\n"),
        [f"{META}:1:38: nesting deeper than 32 levels"],
    ),
    Case(
        "impossible-date",
        shell(f"name: 2024-13-45\nworkflow:\n  type: shell\n{URL_INPUT}"),
        [
            f"{META}:1:7: name: '2024-13-45' cannot be read as a date; put it in quotes if it is text"
        ],
    ),
    Case(
        "tagged-number-that-is-not-one",
        shell(
            f"name: x\nworkflow:\n  type: shell\n  parallel: {{partition_size: !!int ten}}\n{URL_INPUT}"
        ),
        [
            f"{META}:4:30: workflow.parallel.partition_size: 'ten' cannot be read as a whole number; put it in quotes if it is text"
        ],
    ),
    Case(
        "python-tag",
        shell("name: !!python/object/apply:os.system ['id']\n"),
        [
            f"{META}:1:7: name: the YAML tag !!python/object/apply:os.system is not allowed; use plain values"
        ],
    ),
    Case(
        "custom-tag",
        shell(f"name: !secret x\nworkflow:\n  type: shell\n{URL_INPUT}"),
        [f"{META}:1:7: name: the YAML tag !secret is not allowed; use plain values"],
    ),
    Case(
        "binary-tag",
        shell(f"name: !!binary aGVsbG8=\nworkflow:\n  type: shell\n{URL_INPUT}"),
        [f"{META}:1:7: name: the YAML tag !!binary is not allowed; use plain values"],
    ),
    Case(
        "yaml-a-list",
        shell("- name: x\n- workflow: {}\n"),
        [f"{META}:1:1: the file must be a mapping of keys to values, not a list"],
    ),
    Case(
        "yaml-a-string",
        shell("just some text\n"),
        [f"{META}:1:1: the file must be a mapping of keys to values, not a single value"],
    ),
    Case(
        "yaml-empty",
        shell("# nothing here\n"),
        [f"{META}:1:1: the file is empty; it must be a mapping of keys to values"],
    ),
    Case(
        "yaml-two-documents",
        shell("name: x\n---\nname: y\n"),
        [
            f"{META}:2:1: YAML syntax error: expected a single document in the stream, but found another document"
        ],
    ),
    Case(
        "yaml-control-character",
        shell("name: x\x07y\n"),
        [f"{META}:1:8: the character #x0007 is not allowed in YAML"],
    ),
    Case(
        "meta-not-utf8",
        shell(b"name: Caf\xe9\n"),
        [f"{META}:1:10: this file is not valid UTF-8 (byte 0xe9)"],
    ),
    Case(
        "meta-huge",
        shell("name: x\n" + "# padding\n" * 120_000),
        [f"{META}:1:1: this file is larger than 1 MiB, the limit for recipe files"],
    ),
    # --- where the recipe is ----------------------------------------------------------------
    Case(
        "both-meta-yml-and-meta-yaml",
        {
            **shell(f"name: x\nworkflow:\n  type: shell\n{URL_INPUT}"),
            "recipes/r/meta.yaml": "name: y\n",
        },
        ["recipes/r/meta.yaml:1:1: both meta.yml and meta.yaml exist; keep only one"],
    ),
    Case(
        "no-meta",
        {SCRIPT: GOOD_SCRIPT},
        [f"{META}:1:1: recipes/r has no meta.yml (or meta.yaml)"],
    ),
    Case(
        "meta-symlink-out-of-repo",
        {META: Link("{outside}/recipe/meta.yml"), SCRIPT: GOOD_SCRIPT},
        [f"{META}:1:1: recipes/r/meta.yml leads outside the repository through a symlink"],
    ),
    Case(
        "recipe-dir-symlink-out-of-repo",
        {"recipes/r": Link("{outside}/recipe")},
        ["recipes/r:1:1: recipes/r leads outside the repository through a symlink"],
    ),
    Case(
        "recipes-dir-symlink-out-of-repo",
        {"recipes": Link("{outside}")},
        ["recipes/recipe:1:1: recipes/recipe leads outside the repository through a symlink"],
        recipe="recipes/recipe",
    ),
    Case(
        "recipe-dir-traversal",
        {},
        [
            "recipes/../../outside/recipe:1:1: 'recipes/../../outside/recipe' must be a relative path without '..'"
        ],
        recipe="recipes/../../outside/recipe",
    ),
    Case(
        "recipe-dir-absolute",
        {},
        ["/etc:1:1: '/etc' must be a relative path without '..'"],
        recipe="/etc",
    ),
    Case(
        "recipe-dir-missing",
        {},
        ["recipes/nothing:1:1: recipes/nothing is not a directory in the repository"],
        recipe="recipes/nothing",
    ),
    Case(
        "recipe-dir-is-a-file",
        {"recipes/r": "not a directory\n"},
        ["recipes/r:1:1: recipes/r is not a directory in the repository"],
    ),
    # --- several problems at once, in file order ------------------------------------------
    Case(
        "everything-at-once",
        shell(
            "name: Bad_Name\n"
            "workflow:\n"
            "  type: shell\n"
            "  sh_file: missing.sh\n"
            "input:\n"
            "  params:\n"
            "    - value: ftp://example.org/a.tif\n"
            "    - type: pvc_mount\n"
            "      claim_name: other\n"
            "      path: data\n"
            "output:\n"
            "  type: temporary\n"
            "  dataone_id: x\n"
            "  extra: 1\n"
        ),
        [
            f"{META}:1:7: name: 'Bad_Name' may only contain letters, digits, spaces, '.' and '-'",
            f"{META}:4:12: workflow.sh_file: file recipes/r/missing.sh does not exist",
            f"{META}:7:14: input.params[0].value: 'ftp://example.org/a.tif' is not an absolute http or https URL",
            f"{META}:14:3: output.extra: unknown key; allowed keys are type, dataone_id",
        ],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_recipe_problems(tmp_path: Path, case: Case) -> None:
    repo = tmp_path / "repo"
    materialise(repo, case.files)
    try:
        recipe = load_recipe(repo, case.recipe, case.policy)
    except RecipeInvalid as err:
        found = [str(problem) for problem in err.problems]
    else:
        found = [str(problem) for problem in recipe.warnings]
    assert found == case.expected


def test_corpus_is_large_and_unique() -> None:
    invalid = [case for case in CASES if any(": warning: " not in line for line in case.expected)]
    assert len(invalid) >= 40
    assert len({case.id for case in CASES}) == len(CASES)
