"""Reading a Prometheus text scrape in tests: sample values and the names it exposes."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

_TYPE = re.compile(r"^# TYPE (\S+) (\S+)$", re.MULTILINE)
_HISTOGRAM_SERIES = ("_bucket", "_count", "_sum")


def value(text: str, sample: str, **labels: str) -> float:
    """The sum of the samples named `sample` carrying these labels (0 when there are none)."""
    return sum(
        found.value
        for family in text_string_to_metric_families(text)
        for found in family.samples
        if found.name == sample and labels.items() <= found.labels.items()
    )


def exposed_names(text: str) -> set[str]:
    """Every series name a query may use: each declared family, and a histogram's series,
    whether or not it has samples yet (a labelled family has none until first used)."""
    names = set()
    for name, kind in _TYPE.findall(text):
        names.add(name)
        if kind == "histogram":
            names.update(name + suffix for suffix in _HISTOGRAM_SERIES)
    return names
