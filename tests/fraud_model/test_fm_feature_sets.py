"""Feature-set documents: validation naming the path, and batch == online for every feature kind."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from fraud_model import schema as s
from fraud_model.feature_sets import (
    EntityState,
    FeatureSetError,
    InputCounts,
    OnlineFeatureSet,
    apply_label,
    batch_compute,
    fit_encodings,
    handbook_document,
    handbook_feature_set,
    parse_feature_set,
)
from fraud_model.feature_sets.document import KINDS
from fraud_model.features import FEATURE_NAMES, batch_features
from fraud_model.simulator_tenant import (
    TENANT_ATTRIBUTES,
    pca_passthrough_document,
    pca_to_schema,
    simulate_pca_creditcard,
    simulate_tenant,
    tenant_document,
)

COLUMNS = ["txn_id", "card_token", "terminal_id", "amount", *TENANT_ATTRIBUTES]


@pytest.fixture(scope="module")
def tenant_stream() -> pd.DataFrame:
    frame = simulate_tenant(150, 300, 40, seed=5)
    # Missing optional values, so the missing-entity and missing-operand paths are replayed too.
    rng = np.random.default_rng(0)
    for col in ("device_id", "ip_country", "email_domain"):
        frame.loc[rng.random(len(frame)) < 0.02, col] = None
    frame.loc[rng.random(len(frame)) < 0.02, "account_age_days"] = np.nan
    return frame


def every_kind_document() -> dict[str, Any]:
    """The tenant set plus the kinds and options it does not use (weekday, night, sum of an attribute)."""
    doc = tenant_document(timezone="America/New_York")
    doc["features"] = [
        *doc["features"],  # type: ignore[misc]
        {"name": "local_weekday", "kind": "calendar", "part": "weekday"},
        {"name": "local_night", "kind": "calendar", "part": "night", "night_last_hour": 5},
        {
            "name": "device_age_sum_1d",
            "kind": "velocity",
            "entity": "device_id",
            "aggregate": "sum",
            "of": "account_age_days",
            "window": "1d",
        },
        {
            "name": "card_email_mean_10m",
            "kind": "velocity",
            "entity": ["card_token", "email_domain"],
            "aggregate": "mean",
            "window": "10m",
        },
        {
            "name": "device_nb_tx_7d",
            "kind": "label_risk",
            "entity": "device_id",
            "window": "7d",
            "stat": "count",
        },
        {"name": "same_country_as_card", "kind": "compare", "left": "ip_country", "op": "==", "value": "FR"},
        {
            "name": "risky_and_new",
            "kind": "compare",
            "left": "device_risk_30d",
            "op": ">",
            "right": "email_domain_risk_30d",
        },
    ]
    return doc


def replay(engine: OnlineFeatureSet, frame: pd.DataFrame, counts: InputCounts) -> np.ndarray:
    """Each row's online features in stream order through serialised state; labels fed with the row."""
    store: dict[str, bytes] = {}
    ts = s.epoch_seconds(frame[s.TS])
    cols = [c for c in COLUMNS if c in frame.columns]
    rows = []
    for record, t, y in zip(frame[cols].to_dict("records"), ts, frame[s.IS_FRAUD], strict=True):
        event = {
            k: (None if isinstance(v, float) and np.isnan(v) and k != "amount" else v)
            for k, v in record.items()
        }
        event["ts"] = int(t)
        keys = engine.state_keys(event)
        states = engine.load([store.get(k) if k else None for k in keys], keys, counts)
        vector = engine.compute(event, states, counts)
        engine.observe(event, vector, states, label=int(y))
        for key, state in zip(keys, states, strict=True):
            if key is not None and state is not None:
                store[key] = state.to_bytes()
        rows.append(vector)
    return np.asarray(rows, dtype=np.float64)


def test_handbook_document_gives_todays_features_in_batch(small_stream: pd.DataFrame) -> None:
    fs = handbook_feature_set()
    assert fs.feature_names == FEATURE_NAMES
    expected = batch_features(small_stream)
    np.testing.assert_array_equal(batch_compute(fs, small_stream).to_numpy(), expected.to_numpy())
    verdicts = pd.Series(np.where(np.arange(len(small_stream)) % 5 == 0, 1, 0), index=small_stream.index)
    np.testing.assert_array_equal(
        batch_compute(fs, small_stream, labels=verdicts).to_numpy(),
        batch_features(small_stream, labels=verdicts).to_numpy(),
    )


def test_handbook_document_online_equals_todays_batch(small_stream: pd.DataFrame) -> None:
    engine = OnlineFeatureSet(handbook_feature_set())
    online = replay(engine, small_stream, InputCounts())
    np.testing.assert_array_equal(online, batch_features(small_stream).to_numpy())


def test_every_feature_kind_online_equals_batch(tenant_stream: pd.DataFrame) -> None:
    fs = parse_feature_set(every_kind_document())
    kinds = {f.kind for f in fs.features}
    aggregates = {f.aggregate for f in fs.features if f.kind == "velocity"}
    assert kinds == set(KINDS)
    assert aggregates == {"count", "sum", "mean", "distinct", "since_previous", "amount_ratio"}
    assert any(f.where for f in fs.features) and any(len(f.entity) == 2 for f in fs.features)
    train = tenant_stream.iloc[: len(tenant_stream) // 2]
    encodings = fit_encodings(fs, train, train[s.IS_FRAUD].to_numpy())
    batch = batch_compute(fs, tenant_stream, encodings=encodings)
    counts = InputCounts()
    online = replay(OnlineFeatureSet(fs, encodings), tenant_stream, counts)
    for i, name in enumerate(fs.feature_names):
        np.testing.assert_array_equal(online[:, i], batch[name].to_numpy(), err_msg=name)
    assert np.isnan(batch["device_cards_1d"]).any()  # rows without a device have no device features
    assert counts.unknown_category > 0 and counts.missing_optional > 0 and counts.new_entity > 0


def test_local_time_uses_the_tenant_time_zone() -> None:
    fs = parse_feature_set(
        {"timezone": "Asia/Tokyo", "features": [{"name": "h", "kind": "calendar", "part": "hour"}]}
    )
    frame = pd.DataFrame({s.TS: pd.to_datetime(["2026-03-02T16:30:00Z"], utc=True)})
    assert batch_compute(fs, frame)["h"].tolist() == [1.0]  # 16:30 UTC is 01:30 next day in Tokyo
    online = OnlineFeatureSet(fs).compute({"ts": int(frame[s.TS].iloc[0].timestamp())}, [])
    assert online == [1.0]


def test_delayed_label_risk_only_counts_old_enough_labels() -> None:
    fs = parse_feature_set(
        {
            "delay_days": 1,
            "attributes": {"device_id": "identifier"},
            "features": [{"name": "r", "kind": "label_risk", "entity": "device_id", "window": "1d"}],
        }
    )
    engine = OnlineFeatureSet(fs)
    state = EntityState()
    t0 = 1_800_000_000
    engine.observe({"txn_id": "a", "ts": t0, "device_id": "d"}, [0.0], [state])
    assert apply_label(state, "a", 1)
    assert engine.compute({"ts": t0 + 3600, "device_id": "d"}, [state]) == [0.0]  # label not yet known
    assert engine.compute({"ts": t0 + 86_400 + 1, "device_id": "d"}, [state]) == [1.0]
    assert not apply_label(state, "missing", 1)


def test_state_keeps_only_its_horizon_and_roundtrips() -> None:
    fs = parse_feature_set(
        {
            "attributes": {"device_id": "identifier"},
            "features": [
                {"name": "n", "kind": "velocity", "entity": "device_id", "aggregate": "count", "window": "1h"}
            ],
        }
    )
    engine = OnlineFeatureSet(fs)
    state = EntityState()
    for i in range(50):
        engine.observe({"ts": 1_000_000 + 600 * i, "device_id": "d"}, [0.0], [state])
    assert len(state.ts) == 6  # only the last hour (600 s apart) is kept
    assert EntityState.from_bytes(state.to_bytes()) == state


def test_pca_passthrough_set_computes_the_components() -> None:
    frame = pca_to_schema(simulate_pca_creditcard(500, seed=1))
    fs = parse_feature_set(pca_passthrough_document())
    out = batch_compute(fs, frame)
    assert out.shape == (500, 29)
    np.testing.assert_array_equal(out["pca_v14"].to_numpy(), frame["v14"].to_numpy())


@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (lambda d: d["features"][3].update(window=0), "features[3].window", "outside 1 minute"),
        (lambda d: d["features"][3].update(window="0m"), "features[3].window", "outside 1 minute"),
        (lambda d: d["features"][14].update(of="shoe_size"), "features[14].of", "unknown attribute"),
        (lambda d: d["features"][24].update(right="amount"), "features[24].right", "type mismatch"),
        (
            lambda d: d["features"][0].update(attribute="email_domain"),
            "features[0].attribute",
            "numeric or boolean",
        ),
        (lambda d: d.update(timezone="Mars/Olympus"), "timezone", "unknown time zone"),
        (lambda d: d["attributes"].update(amount={"type": "numeric"}), "attributes.amount", "built-in"),
        (
            lambda d: d["attributes"]["device_id"].update(type="blob"),
            "attributes.device_id.type",
            "type must be",
        ),
    ],
)
def test_bad_documents_name_the_path(mutate: Any, path: str, words: str) -> None:
    doc = tenant_document()
    mutate(doc)
    with pytest.raises(FeatureSetError) as err:
        parse_feature_set(doc)
    assert any(p == path and words in m for p, m in err.value.errors), err.value.errors


def test_a_cycle_is_refused_naming_the_loop() -> None:
    doc = {
        "features": [
            {"name": "a", "kind": "compare", "left": "b", "op": ">", "value": 1},
            {
                "name": "b",
                "kind": "velocity",
                "entity": "card_token",
                "aggregate": "count",
                "window": "1d",
                "where": {"feature": "a", "op": ">", "value": 0},
            },
        ]
    }
    with pytest.raises(FeatureSetError) as err:
        parse_feature_set(doc)
    assert err.value.errors[0][0] == "features[0]" and "cycle: a -> b -> a" in err.value.errors[0][1]


def test_handbook_document_is_plain_data() -> None:
    doc = handbook_document()
    assert len(doc["features"]) == 22 and doc["timezone"] == "UTC"
