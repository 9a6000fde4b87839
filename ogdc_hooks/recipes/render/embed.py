"""Putting text from a recipe into a workflow so that it reaches the container unchanged.

Three layers read a rendered workflow before a command runs, and each would
change some text:

1. Argo substitutes `{{...}}` everywhere in a template, in two passes (globals,
   then inputs), and fails on a `{{` without `}}`. Argo has no escape for
   `{{`, so recipe text never reaches Argo with `{{` in it:
   * a shell command holding `{` followed by `{` is sent as
     `eval "$(printf '%b' '...')"` with every `{` written as the octal escape
     `\\0173`, which the shell turns back into `{` inside the container;
   * text in Python sources goes in as a JSON string literal with `{` and `}`
     written as `\\u007b` and `\\u007d`;
   * `{` and `}` in URLs are percent-encoded (`%7B`, `%7D`), which names the
     same resource (HTTP clients send them encoded anyway).
2. Kubernetes expands `$(VAR)` and turns `$$` into `$` in a container's
   `command` and `args`, so every `$` there is doubled (`container_args`).
   Script `source` is not expanded by Kubernetes.
3. The shell: commands are passed as one argument of `sh -c` (no quoting
   needed); other text put into a shell line is single-quoted (`shlex.quote`).
"""

from __future__ import annotations

import json
import shlex

_BRACES = str.maketrans({"{": "\\u007b", "}": "\\u007d"})


def _printf_escaped(text: str) -> str:
    """`printf` printing `text` exactly, every `{` written as the octal escape `\\0173`."""
    escaped = text.replace("\\", "\\\\").replace("{", "\\0173").replace("'", "'\\''")
    return f"printf '%b' '{escaped}'"


def shell_command(command: str) -> str:
    """A shell command line that runs `command` exactly, with no `{{` in it for Argo."""
    if "{{" not in command:
        return command
    return f'eval "$({_printf_escaped(command)})"'


def shell_print(text: str) -> str:
    """A shell command line that prints `text` exactly (no newline added)."""
    if "{{" not in text:
        return f"printf '%s' {shlex.quote(text)}"
    return _printf_escaped(text)


def shell_word(text: str) -> str:
    """`text` as one shell word; only for text without `{{` (ids, paths, encoded URLs)."""
    if "{{" in text:
        raise ValueError(f"{text!r} holds '{{{{' and cannot be given to Argo as it is")
    return shlex.quote(text)


def python_str(text: str) -> str:
    """A Python string literal of `text` that holds no brace at all."""
    return json.dumps(text).translate(_BRACES)


def url(value: str) -> str:
    """`value` with `{` and `}` percent-encoded, so Argo leaves it alone."""
    return value.replace("{", "%7B").replace("}", "%7D")


def container_args(args: list[str]) -> list[str]:
    """`args` as Kubernetes must receive them to pass them on unchanged (`$` doubled)."""
    return [arg.replace("$", "$$") for arg in args]
