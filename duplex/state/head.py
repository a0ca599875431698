"""The trained part of the state decision: a logistic head on standardised inputs, and its fitting."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LogisticHead:
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    bias: float

    def probability(self, x: np.ndarray) -> np.ndarray:
        z = ((np.asarray(x, dtype=np.float64) - self.mean) / self.std) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))

    def to_json(self, digits: int = 5) -> dict:
        return {"mean": _round(self.mean, digits), "std": _round(self.std, digits),
                "weights": _round(self.weights, digits), "bias": round(float(self.bias), digits)}

    @classmethod
    def from_json(cls, data: dict) -> LogisticHead:
        return cls(np.asarray(data["mean"], dtype=np.float64), np.asarray(data["std"], dtype=np.float64),
                   np.asarray(data["weights"], dtype=np.float64), float(data["bias"]))


def _round(values: np.ndarray, digits: int) -> list[float]:
    return [float(f"{v:.{digits}g}") for v in np.asarray(values, dtype=np.float64)]


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, penalty_scale: np.ndarray | None = None,
                 iterations: int = 50, sample_weight: np.ndarray | None = None) -> LogisticHead:
    """L2-regularised logistic regression by Newton's method (IRLS) on standardised inputs; numpy only.

    ``l2`` multiplies the squared weights (not the bias); ``penalty_scale`` gives each column its own
    multiple of it (e.g. a stronger penalty on the 576 embedding columns than on the hand features).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-6] = 1.0
    z = (x - mean) / std
    n, d = z.shape
    design = np.hstack([z, np.ones((n, 1))])
    penalty = np.full(d + 1, l2, dtype=np.float64)
    if penalty_scale is not None:
        penalty[:d] *= np.asarray(penalty_scale, dtype=np.float64)
    penalty[d] = 0.0
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    theta = np.zeros(d + 1)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ theta, -40, 40)))
        gradient = design.T @ (sw * (p - y)) + penalty * theta
        hessian = (design * (sw * p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.max(np.abs(step)) < 1e-7:
            break
    return LogisticHead(mean, std, theta[:d], float(theta[d]))
