"""A recogniser's confidence as the probability that its answer is right.

The flows act on confidence with two thresholds (`reject_below`,
`confirm_below`), which only mean something when the number is a
probability: "below 0.25" must mean "wrong three times in four". Raw
recogniser scores are not: pocketsphinx's acoustic gap drifted with the
length of the phrase and with the voice (a right "it's too expensive" scored
0.07-0.17 on a deployer's voices while a wrong "yeah" scored 0.78).

So every recogniser reports a few named features of its result and its
confidence is a logistic model over them, P(right | features), fitted on
utterances of the shipped flows' grammars from voices the tests do not use
(`ivr bench asr --calibrate` refits and prints the coefficients, which the
recogniser ships as constants). Nothing here knows about a particular
engine: a Whisper recogniser behind the same interface names its own
features (log-probability per token, no-speech probability...) and ships
its own `Logistic`.

Features are clipped into the range they were fitted on: a logistic model
extrapolates linearly, and an extreme value (a gap no training utterance
had, perfectly clean audio) must not make a probability of exactly 0 or 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Logistic", "fit"]


@dataclass(frozen=True)
class Logistic:
    """P(right) = sigmoid(intercept + Σ weight·clip(feature)), over named features."""

    intercept: float
    weights: tuple[tuple[str, float], ...]
    ranges: tuple[tuple[str, float, float], ...] = ()  # (name, low, high) the features are clipped to

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.weights)

    def clipped(self, features: Mapping[str, float]) -> dict[str, float]:
        """The features the model reads, inside their fitted ranges (KeyError when one is missing)."""
        limits = {name: (low, high) for name, low, high in self.ranges}
        values = {}
        for name in self.names:
            low, high = limits.get(name, (-math.inf, math.inf))
            values[name] = min(high, max(low, float(features[name])))
        return values

    def probability(self, features: Mapping[str, float]) -> float:
        values = self.clipped(features)
        logit = self.intercept + sum(weight * values[name] for name, weight in self.weights)
        return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, logit))))

    def source(self, indent: str = "") -> str:
        """This model as Python source, for pasting over the shipped constants."""
        weights = ", ".join(f'("{name}", {weight:.4g})' for name, weight in self.weights)
        ranges = ", ".join(f'("{name}", {low:.4g}, {high:.4g})' for name, low, high in self.ranges)
        return (f"Logistic(\n{indent}    intercept={self.intercept:.4g},\n{indent}    weights=({weights}),\n"
                f"{indent}    ranges=({ranges}))")


def fit(samples: Sequence[Mapping[str, float]], labels: Sequence[bool], names: Sequence[str],
        l2: float = 1.0, quantiles: tuple[float, float] = (0.01, 0.99)) -> Logistic:
    """Maximum-likelihood logistic regression (Newton's method, L2 on standardised weights).

    Each feature's range is the `quantiles` of its training values, and it is
    clipped there before fitting too, so a few outliers neither pull the
    weights nor stretch the range. Standardising first makes the L2 penalty
    treat features on different scales alike; the weights returned are on
    the features' own scale.
    """
    if len(samples) != len(labels) or not samples:
        raise ValueError("need as many labels as samples, and some of each")
    raw = np.array([[float(sample[name]) for name in names] for sample in samples])
    low, high = np.quantile(raw, quantiles[0], axis=0), np.quantile(raw, quantiles[1], axis=0)
    values = np.clip(raw, low, high)
    y = np.asarray(labels, dtype=float)
    mean, spread = values.mean(axis=0), values.std(axis=0)
    spread[spread == 0] = 1.0
    design = np.column_stack([np.ones(len(values)), (values - mean) / spread])
    penalty = np.eye(design.shape[1]) * l2
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    beta = np.zeros(design.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hessian, design.T @ (p - y) + penalty @ beta)
        beta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    weights = beta[1:] / spread
    intercept = float(beta[0] - np.sum(weights * mean))
    return Logistic(intercept=intercept, weights=tuple((n, float(w)) for n, w in zip(names, weights)),
                    ranges=tuple((n, float(lo), float(hi)) for n, lo, hi in zip(names, low, high)))
