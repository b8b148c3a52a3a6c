"""Reference profiles and the drift statistics: PSI and Jensen-Shannon distance properties."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from fraud_model.profile import CompiledProfile, bin_counts, build_profile, js_distance, psi, quantile_edges

counts = st.lists(st.integers(min_value=0, max_value=10_000), min_size=2, max_size=12)


@given(counts)
def test_psi_and_js_are_zero_on_identical_distributions(c: list[int]) -> None:
    assert psi(c, c) < 1e-12
    assert js_distance(c, c) < 1e-6
    scaled = [3 * v for v in c]  # the same proportions from three times the traffic
    assert psi(c, scaled) < 1e-12


pairs = st.integers(min_value=2, max_value=12).flatmap(
    lambda n: st.tuples(*[st.lists(st.integers(0, 10_000), min_size=n, max_size=n)] * 2)
)


@given(pairs)
def test_psi_is_non_negative_and_js_is_a_bounded_symmetric_distance(
    pair: tuple[list[int], list[int]],
) -> None:
    a, b = pair
    assert psi(a, b) >= 0
    assert 0 <= js_distance(a, b) <= 1
    assert abs(js_distance(a, b) - js_distance(b, a)) < 1e-9


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=2**31 - 1), st.floats(min_value=0.05, max_value=2.0))
def test_psi_grows_with_a_shift(seed: int, step: float) -> None:
    reference = np.random.default_rng(seed).normal(size=2_000)
    edges = quantile_edges(reference)
    ref = bin_counts(reference, edges)
    shifts = [0.0, step, 2 * step, 4 * step]
    values = [psi(ref, bin_counts(reference + s, edges)) for s in shifts]
    assert values[0] < 1e-9
    assert all(later >= earlier - 1e-9 for earlier, later in itertools.pairwise(values))
    assert values[-1] > values[0]
    js = [js_distance(ref, bin_counts(reference + s, edges)) for s in shifts]
    assert js[-1] > js[0]


def test_psi_flags_a_real_shift_and_not_a_resample() -> None:
    rng = np.random.default_rng(3)
    reference = rng.lognormal(3, 1, 20_000)
    edges = quantile_edges(reference)
    ref = bin_counts(reference, edges)
    assert psi(ref, bin_counts(rng.lognormal(3, 1, 5_000), edges)) < 0.02
    assert psi(ref, bin_counts(rng.lognormal(3.8, 1, 5_000), edges)) > 0.25


def test_empty_bins_do_not_make_psi_infinite() -> None:
    assert np.isfinite(psi([10, 0, 0], [0, 0, 10]))
    assert psi([10, 0, 0], [0, 0, 10]) > 1


def test_profile_bins_rates_and_quality_facts() -> None:
    rng = np.random.default_rng(1)
    n = 1_000
    features = pd.DataFrame(
        {"amount": rng.gamma(2, 30, n), "during_night": (rng.random(n) < 0.3).astype(float)}
    )
    features.loc[5, "amount"] = np.nan
    scores = rng.random(n)
    profile = build_profile(features, scores, (rng.random(n) < 0.1).astype(float), review=0.5, suspicious=0.8)
    amount = profile["features"]["amount"]
    assert len(amount["edges"]) == 9 and sum(amount["counts"]) == n - 1 and amount["nulls"] == 1
    assert amount["categories"] is None and amount["min"] <= amount["max"]
    night = profile["features"]["during_night"]
    assert night["categories"] == [0.0, 1.0]
    assert sum(night["counts"]) == n
    rates = profile["decision_rates"]
    assert abs(sum(rates.values()) - 1) < 1e-9
    assert abs(rates["SUSPICIOUS"] - float(np.mean(scores >= 0.8))) < 1e-9
    assert 0 < profile["label_rate"] < 0.2
    assert sum(profile["score"]["counts"]) == n


def test_compiled_profile_counts_one_vector_like_the_batch_binning() -> None:
    rng = np.random.default_rng(2)
    features = pd.DataFrame({"a": rng.normal(size=500), "b": rng.integers(0, 3, 500).astype(float)})
    profile = build_profile(features, rng.random(500), np.zeros(500), review=0.5, suspicious=0.8)
    compiled = CompiledProfile.from_profile(profile, ["a", "b"])
    flat = np.zeros(compiled.total_bins, np.int64)
    probe = pd.DataFrame({"a": rng.normal(size=200) * 2, "b": rng.integers(0, 5, 200).astype(float)})
    unseen = 0
    for vector in probe.to_numpy():
        idx, nulls, out, new_values = compiled.locate(vector)
        flat[idx] += 1
        unseen += len(new_values)
        assert not nulls.any()
    split = compiled.split(flat.tolist())
    for name in ("a", "b"):
        assert split[name] == bin_counts(probe[name].to_numpy(), profile["features"][name]["edges"])
    assert unseen == int((probe["b"] > 2).sum())
    idx, nulls, out, _ = compiled.locate([np.nan, 99.0])
    assert nulls.tolist() == [True, False] and out.tolist() == [False, True] and len(idx) == 1


def test_a_batch_is_counted_like_one_vector_at_a_time() -> None:
    rng = np.random.default_rng(4)
    features = pd.DataFrame({"a": rng.normal(size=400), "b": rng.integers(0, 3, 400).astype(float)})
    profile = build_profile(features, rng.random(400), np.zeros(400), review=0.5, suspicious=0.8)
    compiled = CompiledProfile.from_profile(profile, ["a", "b"])
    probe = np.column_stack([rng.normal(size=300) * 3, rng.integers(0, 5, 300).astype(float)])
    probe[7, 0] = np.nan
    scores = rng.random(300)
    counts, score_counts, nulls, out, unseen = compiled.count_batch(probe, scores)
    one_by_one = np.zeros(compiled.total_bins, np.int64)
    expected_out = np.zeros(2, np.int64)
    for vector in probe:
        idx, _, out_one, _ = compiled.locate(vector)
        one_by_one[idx] += 1
        expected_out += out_one
    assert counts.tolist() == one_by_one.tolist()
    assert nulls.tolist() == [1, 0] and out.tolist() == expected_out.tolist()
    assert unseen.tolist() == [0, int((probe[:, 1] > 2).sum())]
    assert score_counts.tolist() == bin_counts(scores, profile["score"]["edges"])
