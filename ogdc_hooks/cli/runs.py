"""Placeholder until its subcommands land; replaced by the real module."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Adds no subcommand yet."""
