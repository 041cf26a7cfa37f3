"""Lineage cycle refusal on random batches (hypothesis): a write is refused exactly when the lineage graph
with the batch applied would have a cycle, the cycle it names is real and uses an edge of the batch, and a
refused batch writes nothing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headwater.engine import Engine
from headwater.engine.errors import LineageCycleError
from headwater.engine.store.memory import MemoryStore

SCHEMA = """
definition user {}
definition dataset {
    relation viewer: user
    lineage derived_from: dataset
}
"""
NODES = [f"d{i}" for i in range(7)]
edges = st.tuples(st.sampled_from(NODES), st.sampled_from(NODES))


def has_cycle(graph: set[tuple[str, str]]) -> bool:
    succ: dict[str, set[str]] = {}
    for a, b in graph:
        succ.setdefault(a, set()).add(b)

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            n = todo.pop()
            for m in succ.get(n, ()):
                if m == goal:
                    return True
                if m not in seen:
                    seen.add(m)
                    todo.append(m)
        return False

    return any(reaches(a, a) for a, _ in graph)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(edges, min_size=1, max_size=6, unique=True), min_size=1, max_size=5))
def test_a_batch_is_refused_exactly_when_it_would_close_a_cycle(batches: list[list[tuple[str, str]]]) -> None:
    engine = Engine(MemoryStore())
    engine.write_schema(SCHEMA)
    graph: set[tuple[str, str]] = set()
    for batch in batches:
        after = graph | set(batch)
        head = engine.store.head()
        texts = [f"dataset:{a}#derived_from@dataset:{b}" for a, b in batch]
        if has_cycle(after):
            with pytest.raises(LineageCycleError) as info:
                engine.touch(*texts)
            assert engine.store.head() == head  # nothing written
            named = str(info.value).split("cyclic: ", 1)[1].split(";")[0]  # "dataset:a -derived_from-> ..."
            steps = [s.removeprefix("dataset:") for s in named.split(" -derived_from-> ")]
            cycle = list(zip(steps, steps[1:]))
            assert steps[0] == steps[-1] and cycle and all(e in after for e in cycle), named
            assert cycle[0] in set(batch), named  # told from an edge of the batch
        else:
            engine.touch(*texts)
            graph = after
