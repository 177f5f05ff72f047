"""The estimation behind `_cadence`: survival from censored durations, and a log-normal fit.

Pure arithmetic.  `kaplan_meier` is the product-limit estimate; `fit` the maximum a
posteriori log-normal of interval- and right-censored log-durations under the prior
`_cadence` describes.  The normal CDF and density are written out (`phi`,
`density`): a refit evaluates them thousands of times.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from statistics import NormalDist

__all__ = ["SIGMA0", "STANDARD_NORMAL", "density", "fit", "kaplan_meier", "phi"]

STANDARD_NORMAL = NormalDist()
_SQRT2 = math.sqrt(2.0)
_SQRT_TAU = math.sqrt(math.tau)
SIGMA0 = 0.4  # a priori spread of one endpoint's log-durations ...
_LOG_SIGMA_SD = 0.5  # ... and how sure of it


# The standard normal's CDF and density as `NormalDist` computes them, without its
# method calls: a refit evaluates them thousands of times.
def phi(x: float) -> float:
    """The standard normal CDF."""
    return 0.5 * (1.0 + math.erf(x / _SQRT2))


def density(x: float) -> float:
    """The standard normal density."""
    return math.exp(-0.5 * x * x) / _SQRT_TAU


def kaplan_meier(
    events: Iterable[float], censored: Iterable[float]
) -> list[tuple[float, float, int]]:
    """Product-limit survival: ``(time, survival just after it, at risk)`` per event time.

    A job censored at the same time as an event counts as still at risk then.
    """
    points = sorted([(t, 0) for t in events] + [(t, 1) for t in censored])
    at_risk, survival = len(points), 1.0
    steps: list[tuple[float, float, int]] = []
    i = 0
    while i < len(points):
        t, ended, gone = points[i][0], 0, 0
        while i < len(points) and points[i][0] == t:
            ended += points[i][1] == 0
            gone += 1
            i += 1
        if ended:
            survival *= 1 - ended / at_risk
            steps.append((t, survival, at_risk))
        at_risk -= gone
    return steps


def fit(
    bins: dict[tuple[float, float], int], prior: tuple[float, float], start: tuple[float, float]
) -> tuple[float, float, float]:
    """MAP ``(mu, sigma, var of mu)`` of censored log-normal data by Newton's method."""
    m0, sd0 = prior
    s0 = math.log(SIGMA0)

    def grad(mu: float, s: float) -> tuple[float, float, float]:
        sigma = math.exp(s)
        value = -0.5 * ((mu - m0) / sd0) ** 2 - 0.5 * ((s - s0) / _LOG_SIGMA_SD) ** 2
        g_mu, g_s = -(mu - m0) / sd0**2, -(s - s0) / _LOG_SIGMA_SD**2
        for (lo, hi), count in bins.items():
            a, b = (lo - mu) / sigma, (hi - mu) / sigma
            pa, pb = (density(a), a * density(a)) if a > -40 else (0.0, 0.0)
            qb, rb = (density(b), b * density(b)) if b < 40 else (0.0, 0.0)
            z = max(
                (phi(b) if b < 40 else 1.0) - (phi(a) if a > -40 else 0.0), 1e-300
            )
            value += count * math.log(z)
            g_mu += count * (pa - qb) / (sigma * z)
            g_s += count * (pb - rb) / z
        return value, g_mu, g_s

    mu, s = start[0], math.log(start[1])
    value, g1, g2 = grad(mu, s)
    h11, h12, h22 = -1 / sd0**2, 0.0, -1 / _LOG_SIGMA_SD**2
    for _ in range(20):
        eps = 1e-5
        _, a1, a2 = grad(mu + eps, s)
        _, b1, b2 = grad(mu, s + eps)
        h11, h12, h22 = (a1 - g1) / eps, ((a2 - g2) + (b1 - g1)) / (2 * eps), (b2 - g2) / eps
        det = h11 * h22 - h12 * h12
        if h11 < 0 and det > 0:
            d_mu, d_s = (-h22 * g1 + h12 * g2) / det, (h12 * g1 - h11 * g2) / det
        else:  # not concave here: a cautious gradient step
            d_mu, d_s = 0.1 * g1 / (1 + abs(g1)), 0.1 * g2 / (1 + abs(g2))
        step = 1.0
        while step > 1e-4:
            n_mu, n_s = mu + step * d_mu, max(math.log(0.01), s + step * d_s)
            n_value, n1, n2 = grad(n_mu, n_s)
            if n_value >= value:
                break
            step /= 2
        else:
            break
        moved = abs(n_mu - mu) + abs(n_s - s)
        mu, s, value, g1, g2 = n_mu, n_s, n_value, n1, n2
        if moved < 1e-6:
            break
    det = h11 * h22 - h12 * h12
    var_mu = -h22 / det if h11 < 0 and det > 0 else sd0**2
    return mu, math.exp(s), min(max(var_mu, 0.0), sd0**2)
