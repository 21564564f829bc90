"""Summing metric families from several processes (``--workers``) into one node's figures."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

logger = logging.getLogger(__name__)


def _key(sample: Sample) -> tuple[str, frozenset[tuple[str, str]]]:
    return sample.name, frozenset(sample.labels.items())


def merge_families(into: list[Metric], other: Iterable[Metric]) -> None:
    """Add ``other``'s samples to ``into``: samples of the same family, name and labels are summed
    (counters, gauges and histogram buckets alike), others are appended. A family whose type
    differs from ours is left out (logged): it comes from a different rtcdn version."""
    families = {f.name: f for f in into}
    for family in other:
        mine = families.get(family.name)
        if mine is None:
            copy = Metric(family.name, family.documentation, family.type, family.unit)
            copy.samples = list(family.samples)
            into.append(copy)
            families[family.name] = copy
            continue
        if mine.type != family.type:
            logger.warning("metrics: %s is %s, %s on a worker: skipped", mine.name, mine.type, family.type)
            continue
        index = {_key(s): i for i, s in enumerate(mine.samples)}
        for sample in family.samples:
            i = index.get(_key(sample))
            if i is None:
                index[_key(sample)] = len(mine.samples)
                mine.samples.append(sample._replace(timestamp=None))
            else:
                mine.samples[i] = mine.samples[i]._replace(value=mine.samples[i].value + sample.value)
