"""Confidence as a probability: the logistic model, its fitting, and the models pocketsphinx ships."""

from __future__ import annotations

import itertools
import random

import pytest

from ivr.speech.confidence import Logistic, fit

MODEL = Logistic(intercept=-1.0, weights=(("gap", 2.0), ("coverage", 3.0)), ranges=(("gap", -2.0, 1.0), ("coverage", 0.0, 1.0)))


def test_probability_rises_with_every_positively_weighted_feature() -> None:
    for gap, coverage in itertools.product([-2.0, -1.0, 0.0, 1.0], [0.0, 0.5, 1.0]):
        here = MODEL.probability({"gap": gap, "coverage": coverage})
        assert 0.0 < here < 1.0
        if gap < 1.0:
            assert MODEL.probability({"gap": gap + 0.5, "coverage": coverage}) > here
        if coverage < 1.0:
            assert MODEL.probability({"gap": gap, "coverage": coverage + 0.25}) > here


def test_features_are_clipped_to_the_range_they_were_fitted_on() -> None:
    """A logistic model extrapolates linearly: a gap no training utterance had must not reach 0 or 1."""
    assert MODEL.probability({"gap": -50.0, "coverage": 0.0}) == MODEL.probability({"gap": -2.0, "coverage": 0.0})
    assert MODEL.probability({"gap": 9.0, "coverage": 1.0}) == pytest.approx(1 / (1 + 2.718281828 ** -(-1 + 2 + 3)))
    with pytest.raises(KeyError):
        MODEL.probability({"gap": 0.0})  # a feature the model needs is missing: say so, never guess


def test_fit_recovers_a_known_model_and_its_source_round_trips() -> None:
    rng = random.Random(3)
    samples, labels = [], []
    for _ in range(3000):
        sample = {"gap": rng.uniform(-2, 1), "coverage": rng.uniform(0, 1)}
        samples.append(sample)
        labels.append(rng.random() < MODEL.probability(sample))
    fitted = fit(samples, labels, ("gap", "coverage"), l2=0.1, quantiles=(0.0, 1.0))
    weights = dict(fitted.weights)
    assert weights["gap"] == pytest.approx(2.0, abs=0.4) and weights["coverage"] == pytest.approx(3.0, abs=0.6)
    assert fitted.intercept == pytest.approx(-1.0, abs=0.4)
    rebuilt = eval(fitted.source(), {"Logistic": Logistic})  # noqa: S307 - the text we paste into the recogniser
    probe = {"gap": -0.5, "coverage": 0.7}
    assert rebuilt.probability(probe) == pytest.approx(fitted.probability(probe), abs=1e-3)


def test_fit_refuses_mismatched_or_empty_data() -> None:
    with pytest.raises(ValueError):
        fit([], [], ("gap",))
    with pytest.raises(ValueError):
        fit([{"gap": 1.0}], [True, False], ("gap",))


# ---------------------------------------------------------------- the shipped pocketsphinx models


def _shipped() -> dict[str, Logistic]:
    pytest.importorskip("pocketsphinx")
    from ivr.speech.pocketsphinx_asr import CONFIDENCE

    return CONFIDENCE


GOOD = {"gap_words": 0.0, "gap_silence": 0.0, "coverage": 1.0, "snr_db": 35.0}


@pytest.mark.parametrize("kind", ["phrases", "digits"])
def test_shipped_models_are_monotone_in_each_feature(kind: str) -> None:
    """Better fit to the audio, more of the speech covered, a cleaner line: never less confident."""
    model = _shipped()[kind]
    steps = {"gap_words": [-6, -4, -3, -2, -1, 0, 0.5], "gap_silence": [-3, -2, -1, 0, 1, 1.5],
             "coverage": [0.1, 0.3, 0.5, 0.7, 0.9, 1.0], "snr_db": [5, 10, 15, 20, 30, 35, 60]}
    for name, values in steps.items():
        probabilities = [model.probability({**GOOD, name: value}) for value in values]
        assert probabilities == sorted(probabilities), (name, probabilities)
        assert probabilities[-1] > probabilities[0], name


def test_shipped_phrase_model_maps_known_features_to_the_flows_decisions() -> None:
    """Feature values met in `ivr bench asr` (held-out voices) against the shipped flows'
    thresholds: reject below 0.25, confirm a choice below 0.85."""
    model = _shipped()["phrases"]
    # a right "update my phone number" on a clean line: acted on at once
    assert model.probability({"gap_words": -0.44, "gap_silence": 0.41, "coverage": 1.0, "snr_db": 35}) > 0.85
    # a right "it's too expensive" that fits the words less well (a deployer's voices): kept, not rejected
    assert model.probability({"gap_words": -2.0, "gap_silence": -0.5, "coverage": 1.0, "snr_db": 25}) > 0.25
    # out-of-grammar "I want to buy a car" heard as "my policy": a third of the speech unexplained
    assert model.probability({"gap_words": -1.78, "gap_silence": -2.02, "coverage": 0.62, "snr_db": 35}) < 0.85
    # a short phrase for a whole sentence (coverage 0.3): rejected
    assert model.probability({"gap_words": -1.0, "gap_silence": -1.0, "coverage": 0.3, "snr_db": 35}) < 0.25
