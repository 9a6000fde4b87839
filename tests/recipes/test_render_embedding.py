"""Recipe text reaches the container unchanged through Argo, Kubernetes and the shell.

Argo's `{{...}}` substitution has no escape and Kubernetes expands `$(VAR)` and
`$$` in args (see `ogdc_hooks/recipes/render/embed.py`). These tests render
awkward commands, apply what Kubernetes does to args, check that no `{{`
reaches Argo except our own references, and run the result with a real shell
or Python to compare with the command run directly."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ogdc_hooks.recipes.model import InputFile
from ogdc_hooks.recipes.render import embed
from tests.recipes.test_render_helpers import (
    k8s_expand,
    make_recipe,
    render,
    shell_script,
    templates,
    url_params,
)

AWKWARD = [
    "printf '%s|' \"double\" 'single' back\\\\slash $HOME \"$HOME\" '$HOME' '$$' > \"$OUT\"",
    "printf '%s' '{{workflow.name}} {{inputs.parameters.x}} {{ lone' > \"$OUT\"",
    "printf '%s' \"$(echo sub)\" '$(NOT_A_VAR)' '$(HOME)' '}}{{' > \"$OUT\"",
    "printf '%s' \"it's {{=1+1}}\" '\\\\0173' '%b' '\\n' > \"$OUT\"",
    "echo trailing-brace '{' > \"$OUT\"",
]
OUR_REFERENCES = re.compile(
    r"\{\{(inputs\.parameters\.[-\w]+|item|steps\.[-\w]+\.outputs\.artifacts\.[-\w]+"
    r"|tasks\.[-\w]+\.outputs\.(result|parameters\.[-\w]+|artifacts\.[-\w]+))\}\}"
)


def argo_tags(manifest: dict[str, Any]) -> list[str]:
    """Every `{{` Argo would see, in the JSON text it substitutes, minus our own references."""
    text = OUR_REFERENCES.sub("", json.dumps(manifest))
    return re.findall(r"\{\{.{0,30}", text)


def run_sh(script: str, tmp_path: Path) -> str:
    out = tmp_path / "out"
    out.unlink(missing_ok=True)
    env = {**os.environ, "OUT": str(out), "HOME": str(tmp_path / "home")}
    subprocess.run(["sh", "-c", script], env=env, check=True)
    return out.read_text()


@pytest.mark.parametrize("command", AWKWARD)
def test_sequential_commands_arrive_unchanged(command: str, tmp_path: Path) -> None:
    manifest = render(make_recipe(commands=(command,)))
    assert argo_tags(manifest) == []
    script = shell_script(templates(manifest)["run-cmd-0"])
    prefix = "mkdir -p /output_dir/ && "
    assert script.startswith(prefix)
    received = script.removeprefix(prefix)
    if "{{" not in command:
        assert received == command  # readable in the Argo UI, exactly as written
    assert run_sh(received, tmp_path) == run_sh(command, tmp_path)


@pytest.mark.parametrize("command", AWKWARD)
def test_parallel_commands_arrive_unchanged(command: str) -> None:
    recipe = make_recipe(commands=(command,), parallel={"enabled": True})
    manifest = render(recipe)
    assert argo_tags(manifest) == []
    source = templates(manifest)["cmd-0"]["script"]["source"]
    [literal] = re.findall(r"^COMMAND = (.*)$", source, flags=re.MULTILINE)
    assert "{" not in literal and "}" not in literal
    assert eval(literal) == command  # a plain string literal


def test_text_on_the_pvc_side_arrives_unchanged(tmp_path: Path) -> None:
    config = '{"name": "{{not argo}}", "cost": "$5", "path": "C:\\\\x", "q": "it\'s",\n"EOF": 1}\n'
    recipe = make_recipe("Viz", viz={"config_file": "config.json"}, viz_config=config)
    manifest = render(recipe)
    assert argo_tags(manifest) == []
    script = shell_script(templates(manifest)["stage-viz-config"])
    script = script.replace("/mnt/workflow", str(tmp_path))
    subprocess.run(["sh", "-c", script], check=True)
    assert (tmp_path / "viz" / "config.json").read_text() == config + "\n"


def test_urls_and_names_with_braces_and_dollars() -> None:
    url = "https://a.example/get?q={{x}}&v=$1"
    recipe = make_recipe(commands=("true",))
    manifest = render(recipe, inputs=[InputFile(url, "x.bin")])
    assert argo_tags(manifest) == []
    script = shell_script(templates(manifest)["fetch"])
    assert script.endswith("'https://a.example/get?q=%7B%7Bx%7D%7D&v=$1'")


def test_pvc_paths_and_globs_with_braces() -> None:
    recipe = make_recipe(
        params=[{"type": "pvc_mount", "claim_name": "c1", "path": "dir {{x}}", "glob": "*{a,b}"}]
    )
    manifest = render(recipe, inputs=[])
    assert argo_tags(manifest) == []
    source = templates(manifest)["fetch"]["script"]["source"]
    assert '("/mnt/data/c1/dir \\u007b\\u007bx\\u007d\\u007d", "*\\u007ba,b\\u007d")' in source


@pytest.mark.parametrize("text", ["plain", "{{a}}", "{", "}", "'\"\\$", "\u00e9\u4e2d", "\n\t"])
def test_python_literals_hold_no_brace(text: str) -> None:
    literal = embed.python_str(text)
    assert "{" not in literal and "}" not in literal
    assert eval(literal) == text


def test_kubernetes_doubling_is_undone_by_kubernetes() -> None:
    args = embed.container_args(["a $b $$c $(D) $"])
    assert args == ["a $$b $$$$c $$(D) $$"]
    assert k8s_expand(args[0]) == "a $b $$c $(D) $"


def test_many_files_parallel_scripts_run(tmp_path: Path) -> None:
    """Play Argo: run the rendered parallel programs in order on a stand-in PVC."""
    count = 5
    commands = (
        'tr a-z A-Z < "$INPUT_FILE" > "$OUTPUT_FILE"',
        'printf "%s:%s\\n" "$(basename "$INPUT_DIR")" "$(cat "$INPUT_FILE")" > "$OUTPUT_FILE.txt"',
    )
    recipe = make_recipe(
        "Run me",
        params=url_params(count),
        commands=commands,
        parallel={"enabled": True, "partition_size": 2},
    )
    files = [InputFile(f"https://data.example.org/f{i}", f"in {i}.txt") for i in range(count)]
    manifest = render(recipe, inputs=files)
    by_name = templates(manifest)
    pvc = tmp_path / "pvc"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "wget").write_text(  # a stand-in wget: -q -O TARGET URL writes the URL's tail
        '#!/bin/sh\nprintf "content of %s" "${4##*/}" > "$3"\n'
    )
    (bin_dir / "wget").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def run(template: dict[str, Any], **parameters: str) -> None:
        source = template["script"]["source"].replace("/mnt/workflow", str(pvc))
        source = source.replace("/tmp/ogdc", str(tmp_path / "tmp"))
        source = source.replace("/output_dir", str(tmp_path / "out"))
        for name, value in parameters.items():
            source = source.replace(f"{{{{inputs.parameters.{name}}}}}", value)
        subprocess.run(["python3", "-c", source], env=env, check=True)

    (tmp_path / "tmp").mkdir()
    listed = by_name["fetch"]["inputs"]["artifacts"][0]
    (tmp_path / "tmp" / "inputs.txt").write_text(listed["raw"]["data"])
    run(by_name["fetch"])
    dag_count = next(t for t in by_name["main"]["dag"]["tasks"] if t["name"] == "cmd-0")[
        "withSequence"
    ]["count"]
    assert dag_count == "3"
    partitions = int(dag_count)
    manifests = pvc / "run-me" / "partition-manifests"
    for index in range(len(commands)):
        for partition in range(partitions):
            path = f"{pvc}/run-me/partition-manifests/cmd-{index}/partition-{partition}.json"
            run(by_name[f"cmd-{index}"], **{"partition-id": str(partition), "manifest": path})
    assert json.loads((manifests / "cmd-0" / "partition-2.json").read_text()) == [
        f"{pvc}/run-me/inputs/in 4.txt"
    ]
    run(by_name["collect-output"])
    produced = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert produced == [f"in {i}.txt.txt" for i in range(count)]
    assert (tmp_path / "out" / "in 3.txt.txt").read_text() == "cmd-0-partition-1:CONTENT OF F3\n"
    assert sorted(p.name for p in (pvc / "run-me").iterdir()) == ["partition-manifests"]
