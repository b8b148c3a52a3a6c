"""The online engine's entity state in both serialised forms: the compact form (numeric arrays,
joined text columns) gives exactly the batch features, and every column survives a round trip."""

from __future__ import annotations

import random
from array import array

import numpy as np
import orjson
import pandas as pd
import pytest

from fraud_model import schema as s
from fraud_model.feature_sets import (
    InputCounts,
    OnlineFeatureSet,
    batch_compute,
    fit_encodings,
    parse_feature_set,
)
from fraud_model.feature_sets import state as state_module
from fraud_model.feature_sets.state import SEP, EntityState, TextColumn
from tests.fraud_model.test_fm_feature_sets import every_kind_document, replay, tenant_stream  # noqa: F401


def test_compact_form_gives_the_batch_features(
    tenant_stream: pd.DataFrame,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(state_module, "SMALL_EVENTS", 0)  # every state written in the compact form
    fs = parse_feature_set(every_kind_document())
    y = tenant_stream[s.IS_FRAUD].to_numpy()
    encodings = fit_encodings(fs, tenant_stream, y)
    batch = batch_compute(fs, tenant_stream, encodings=encodings)
    online = replay(OnlineFeatureSet(fs, encodings), tenant_stream, InputCounts())
    for i, name in enumerate(fs.feature_names):
        np.testing.assert_array_equal(online[:, i], batch[name].to_numpy(), err_msg=name)


def _big_state(n: int) -> EntityState:
    values: list[str | None] = [None if i % 7 == 0 else f"card_{i % 13}" for i in range(n)]
    return EntityState(
        ts=list(range(1_700_000_000, 1_700_000_000 + n)),
        units={"amount": [i * 10_000 for i in range(n)]},
        values={"card_token": values},
        flags={"r>3.0": [i % 2 for i in range(n)]},
        txn_ids=[f"t{i}" if i else "" for i in range(n)],
        labels=[(i % 3) - 1 for i in range(n)],
        last_ts=1_700_000_000 + n,
    )


def _as_lists(state: EntityState) -> list[object]:
    def plain(col: object) -> object:
        if isinstance(col, TextColumn):
            return col.as_list()
        return list(col)  # type: ignore[call-overload]

    return [
        plain(state.ts),
        {k: plain(v) for k, v in state.units.items()},
        {k: plain(v) for k, v in state.values.items()},
        {k: plain(v) for k, v in state.flags.items()},
        plain(state.txn_ids),
        plain(state.labels),
        state.last_ts,
    ]


@pytest.mark.parametrize("n", [0, 1, 5, 300])
def test_both_forms_round_trip_every_column(n: int) -> None:
    state = _big_state(n)
    data = state.to_bytes()
    assert data.startswith(state_module.MAGIC) == (n > state_module.SMALL_EVENTS)
    back = EntityState.from_bytes(data)
    assert _as_lists(back) == _as_lists(state)
    assert _as_lists(EntityState.from_bytes(back.to_bytes())) == _as_lists(state)
    if n > state_module.SMALL_EVENTS:
        assert isinstance(back.ts, array) and isinstance(back.values["card_token"], TextColumn)
        assert len(data) < len(orjson.dumps(_as_lists(state)))


def test_a_value_holding_the_separator_keeps_its_column_exact() -> None:
    state = _big_state(300)
    odd = f"dev{SEP}ice"
    state.values["card_token"][-1] = odd
    back = EntityState.from_bytes(state.to_bytes())
    assert _as_lists(back) == _as_lists(state)
    column = back.values["card_token"]
    assert isinstance(column, TextColumn)
    column.insert(len(column), f"x{SEP}")  # into the joined text it would split wrongly: a list now
    assert column.slice(len(column) - 2, len(column)) == [odd, f"x{SEP}"]


def test_text_column_reads_and_forgets_without_splitting_more_than_it_must() -> None:
    items: list[str | None] = ["a", None, "b", "c", None, "d"]
    column = TextColumn.joined(SEP.join(x or "" for x in items), len(items), optional=True)
    assert column.slice(3, 6) == ["c", None, "d"]
    assert column.slice(0, 6) == items and column.slice(6, 6) == []
    column.insert(6, "e")
    column.insert(7, None)
    column.drop_first(2)
    assert len(column) == 6 and column.slice(0, 6) == ["b", "c", None, "d", "e", None]
    assert column.slice(1, 3) == ["c", None]  # a window ending before the newest item
    column.drop_first(10)
    assert len(column) == 0 and column.slice(0, 0) == []
    with pytest.raises(ValueError, match="no missing"):
        TextColumn(optional=False).insert(0, None)


def test_a_state_cached_in_the_first_form_still_reads() -> None:
    first = orjson.dumps(
        [[1, 2], {"amount": [10, 20]}, {"card_token": ["a", None]}, {}, ["x", "y"], [-1, 1], 2]
    )
    state = EntityState.from_bytes(first)
    assert _as_lists(state) == [
        [1, 2],
        {"amount": [10, 20]},
        {"card_token": ["a", None]},
        {},
        ["x", "y"],
        [-1, 1],
        2,
    ]


def test_text_column_behaves_as_a_list_under_late_inserts_and_windows() -> None:
    """Random inserts (late transactions land mid-column), windows and forgets against a plain list."""
    rng = random.Random(7)
    model: list[str | None] = []
    column = TextColumn.joined("", 0, optional=True)
    for step in range(2_000):
        op = rng.random()
        if op < 0.6:
            pos = len(model) if rng.random() < 0.7 else rng.randint(0, len(model))
            value = None if rng.random() < 0.1 else f"v{rng.randint(0, 50)}"
            model.insert(pos, value)
            column.insert(pos, value)
        elif op < 0.9:
            lo, end = sorted((rng.randint(0, len(model)), rng.randint(0, len(model))))
            assert column.slice(lo, end) == model[lo:end], step
        else:
            cut = rng.randint(0, 3)
            del model[:cut]
            column.drop_first(cut)
        assert len(column) == len(model)
        if step % 100 == 0:  # through the stored form, as between two checks
            column = TextColumn.from_stored(column.stored(), len(column), optional=True)
    assert column.as_list() == model
