"""Where to place the checks of a job: a learned duration model and the schedule it implies.

Pure arithmetic: no I/O, no clock.  Times are floats the caller passes in (any
monotonic clock, in seconds); ages are seconds since a job's submit.

**The model** (one `DurationModel` per endpoint).  A job that ended was seen
pending at age ``L`` and done at age ``R``: its duration lies in ``(L, R]``
(interval-censored).  A job still running was last seen pending at age ``c``:
its duration is above ``c`` (right-censored; *not* its current age, which it may
already have outlived).  Counting running jobs is what removes the survivorship
bias of learning from finished jobs only: early in a wave only the fast jobs
have ended.  From these the model keeps

* a log-normal fit, the maximum a posteriori ``(mu, sigma)`` of the censored
  log-durations under a prior: ``mu ~ N(log prior_median, prior_spread**2)``,
  ``log sigma ~ N(log 0.4, 0.5**2)``.  With no data it *is* the prior; data take
  over as they come;
* a Kaplan-Meier (product-limit) estimate over the same jobs, each ended job's
  end placed at the fit's conditional median inside its interval.

The survival function used is Kaplan-Meier where at least a few jobs are still
at risk, continued by the fit's conditional tail beyond.  Between two of its
steps, and below the first, it follows the fit's shape (linear in the fit's CDF,
not in age): with a few dozen jobs seen, a straight line from age 0 to the first
end would put the first percents of jobs at a fraction of that end and pull
every first check far too early.

**The schedule** (`DurationModel.next_check`).  Minimising queries per job under
a median and a p95 detection delay (dynamic programming over check times with
the true distribution, see ``benchmarks/cadence_sim.py``) gives a simple shape:
a first check late enough that a small fraction of jobs ended more than one
interval before it, then checks every ``h`` while the job runs, no back-off
until far past the tail.  Its rule, per job:

* ``h = 2 (1 - LATE_FRACTION) * target_delay``.  A job ending between two checks
  ``h`` apart waits uniformly in ``[0, h)``; with the late jobs below this puts
  the median delay at ``target_delay`` and the p95 at about ``1.9 * target_delay``
  (a fixed loop every ``2 * target_delay`` has the same median and p95).
* Late budget: each job may be "late" (end more than ``h`` before the check
  that sees it) with probability ``LATE_FRACTION`` in all.  The next check after
  age ``a`` is at ``q + h``, ``q`` the age by which the job's unspent budget of
  probability would have ended (``F(q) = F(a) + unspent``), or ``a + h`` if
  later.  The budget is recounted under the current model, so a first check
  that a cautious prior placed early lets the second one come later.
* Past the age where ``TAIL`` of jobs are still running, the interval grows
  with the overrun (a stuck or queued job costs few queries).

Trade of ``target_delay``: queries in the dense zone scale as ``1/target_delay``;
the fixed part (jobs skip the checks before their first one) does not.
"""

from __future__ import annotations

import bisect
import collections
import math
from collections.abc import Hashable

import attrs

from ._survival import SIGMA0, STANDARD_NORMAL, fit, kaplan_meier, phi

__all__ = ["LATE_FRACTION", "TAIL", "DurationModel", "kaplan_meier", "prior_for"]

# Fraction of jobs allowed to end more than one interval before the check that sees them.
LATE_FRACTION = 0.02
# Survival below which the model stops trusting its tail and checks back off.
TAIL = 1e-3
_MIN_AT_RISK = 8  # Kaplan-Meier is trusted up to where this many jobs were at risk
_BACKOFF = 0.5  # interval past the tail, as a fraction of the overrun
_REFIT_EVENTS = 2048  # once warm, events between refits ...
_REFIT_SECONDS = 2.0  # ... or, this long after the last one, ...
_REFIT_EVENTS_QUIET = 128  # ... this many; and between refits, a quarter of the
_WARM_FITS = 32  # jobs report (twice as many events as jobs after this many fits), and then
_MIN_REFIT_GAP = 0.2  # at most one refit per this many seconds (of the jobs' clock)
_BIN = 25.0  # log-ages are rounded to 1/_BIN (4 %) before fitting: fewer bins, cheaper fits


def prior_for(endpoint: str | None, output_type: str | None = None) -> tuple[float, float]:
    """A guess at ``(median seconds, spread)`` for jobs of *endpoint* before any is seen.

    *spread* is the standard deviation of the guess's log (0.7 is "within a factor
    of two either way").  The table is rough: it only places the first checks of
    the first jobs, and the model replaces it as jobs end.  *output_type* is a
    kind (``"video"``) or a file extension (``"mp4"``).
    """
    text = f"{endpoint or ''} {output_type or ''}".lower()

    def has(*words: str) -> bool:
        return any(w in text for w in words)

    if has("n-pro", "nano-banana-pro"):
        return 40.0, 0.3
    if has("video", "mp4", "mov", "webm", "i2v", "t2v", "kling", "veo", "sora", "hailuo"):
        return 180.0, 0.7
    if has("3d", "glb", "gltf", "obj", "fbx", "mesh", "usdz"):
        return 120.0, 0.7
    if has("audio", "tts", "speech", "music", "voice", "mp3", "wav", "flac", "ogg"):
        return 20.0, 0.7
    if has("image", "edit", "banana", "png", "jpg", "jpeg", "webp"):
        return 30.0, 0.6
    if has("chat", "llm", "caption", "describe", "txt", "json", "text"):
        return 10.0, 0.8
    return 30.0, 1.0


@attrs.define
class _Running:
    start: float
    seq: int
    last: float = 0.0  # age at the last check that saw it pending
    interval: float = math.inf  # the h its schedule used
    # Ages of "late" ends; None until the first (most jobs have none: no list each).
    late: list[tuple[float, float]] | None = None


class DurationModel:
    """Durations of one endpoint's jobs, learned from the checks of its jobs.

    Args:
        prior_median: seconds a job typically takes, before any is seen (`prior_for`).
        prior_spread: standard deviation of the log of that guess.
        history: ended jobs remembered.
        min_samples: ended jobs before Kaplan-Meier is used next to the fit.
    """

    def __init__(
        self,
        *,
        prior_median: float,
        prior_spread: float = 0.7,
        history: int = 256,
        min_samples: int = 8,
    ) -> None:
        if not prior_median > 0 or not prior_spread > 0 or history < 1:
            raise ValueError("need prior_median > 0, prior_spread > 0 and history >= 1")
        self._prior = (math.log(prior_median), prior_spread)
        self._min_samples = min_samples
        self._history = history
        self._seq = 0
        # Ended jobs by start order: a window over *submits* keeps a fair sample, where
        # one over ends would keep, in a wave, only its slowest jobs.
        # seq -> (last age seen pending, age seen ended, and both as log-bins)
        self._ended: dict[int, tuple[float, float, float, float]] = {}
        self._running: dict[Hashable, _Running] = {}
        self._dirty = 0
        self._fits = 0
        self._seen_at = self._fitted_at = -math.inf  # latest event time; at the last refit
        # Quantiles every first check asks for, kept until the next refit.
        self._late_age: float | None = None
        self._tail: float | None = None
        self._mu, self._sigma, self._var_mu = self._prior[0], SIGMA0, prior_spread**2
        self._spread = math.hypot(SIGMA0, prior_spread)
        # Kaplan-Meier up to the horizon: times, survival after each, integral of S up to each.
        self._times: list[float] = []
        self._survival: list[float] = []
        self._area: list[float] = []
        self._shape: list[float] = []  # the fit's CDF at each of those times

    # -- events -------------------------------------------------------------------

    def job_started(self, key: Hashable, at: float) -> None:
        """Job *key* was submitted at time *at*."""
        self._seq += 1
        self._ended.pop(self._seq - self._history, None)
        self._running[key] = _Running(start=at, seq=self._seq)

    def job_pending(self, key: Hashable, at: float) -> None:
        """A check at time *at* found job *key* still queued or running."""
        job = self._running.get(key)
        if job is not None:
            self._commit(job, at - job.start)
            job.last = max(job.last, at - job.start)
            self._dirty += 1
            self._seen_at = at

    def job_ended(self, key: Hashable, at: float) -> None:
        """A check at time *at* found job *key* succeeded: it ended since its last check."""
        job = self._running.pop(key, None)
        if job is not None:
            if job.seq > self._seq - self._history:
                lo, hi = job.last, max(at - job.start, job.last)
                self._ended[job.seq] = (lo, hi, _log_bin(lo), _log_bin(hi))
            self._dirty += 1
            self._seen_at = at

    def job_dropped(self, key: Hashable) -> None:
        """Job *key* failed, was cancelled or timed out: not a duration sample."""
        if self._running.pop(key, None) is not None:
            self._dirty += 1

    @staticmethod
    def _commit(job: _Running, age: float) -> None:
        if age - job.interval > job.last:
            if job.late is None:
                job.late = []
            job.late.append((job.last, age - job.interval))

    # -- questions ----------------------------------------------------------------

    def quantile(self, q: float) -> float:
        """The age in seconds by which a fraction *q* (in (0, 1)) of jobs end."""
        self._refresh()
        return self._inverse(min(max(q, 1e-9), 1 - 1e-9))

    def survival(self, age: float) -> float:
        """The fraction of jobs still running at *age* seconds."""
        self._refresh()
        return self._sf(age)

    def eta(self, elapsed: float) -> float:
        """Expected seconds left for a job that has run *elapsed* seconds."""
        self._refresh()
        age = max(elapsed, 0.0)
        if not self._times or age >= self._times[-1]:
            return self._ln_excess(age) / max(self._ln_sf(age), 1e-300)
        i = bisect.bisect_right(self._times, age)
        s_here = self._sf(age)
        before = self._area[i - 1] + (self._survival[i - 1] + s_here) / 2 * (
            age - self._times[i - 1]
        )
        horizon = self._times[-1]
        tail = self._survival[-1] * self._ln_excess(horizon) / max(self._ln_sf(horizon), 1e-300)
        return max(0.0, (self._area[-1] - before + tail) / s_here)

    def next_check(self, key: Hashable, now: float, *, target_delay: float) -> float:
        """Seconds from *now* until job *key* should be checked (0: at once).

        Call it after `job_started` and after each `job_pending`; calling it again
        when the check comes due gives the wait under what has been learned since
        (a job may then be deferred without a query).  An unknown key gets ``h``.
        """
        self._refresh()
        h = 2 * (1 - LATE_FRACTION) * target_delay
        job = self._running.get(key)
        if job is None:
            return h
        job.interval = h
        a, elapsed = job.last, now - job.start
        due = a + h
        if a == 0 and not job.late:
            # Not checked yet (every job's first check): the whole budget is unspent.
            due = max(due, self._quantile_of_late() + h)
            return max(0.0, due - elapsed)
        unspent = LATE_FRACTION - sum(self._cdf(hi) - self._cdf(lo) for lo, hi in job.late or ())
        survival = self._sf(a)
        unspent = min(unspent, LATE_FRACTION * survival)
        if unspent > 0:
            due = max(due, self._inverse(1 - survival + unspent) + h)
        tail = self._tail_age()
        if a > tail:
            due = max(due, a + _BACKOFF * (a - tail))
        return max(0.0, due - elapsed)

    def _quantile_of_late(self) -> float:
        if self._late_age is None:
            self._late_age = self._inverse(LATE_FRACTION)
        return self._late_age

    def _tail_age(self) -> float:
        if self._tail is None:
            self._tail = self._inverse(1 - TAIL)
        return self._tail

    # -- the estimate -------------------------------------------------------------

    def _refresh(self) -> None:
        # Refit once a quarter of the jobs reported (twice as many events as jobs once warm:
        # after some fits, or once half the window of jobs has ended) and a few hundred
        # events apart: a fit costs far more than one check's bookkeeping, and under a heavy
        # load events come by the thousand.  A quiet model refits sooner.
        n = len(self._ended) + len(self._running)
        dirty = self._dirty
        warm = self._fits >= _WARM_FITS or 2 * len(self._ended) >= self._history
        if dirty == 0 or dirty < (2 * n if warm else n / 4):
            return
        needed = min(_REFIT_EVENTS, 1 + self._fits)
        since = self._seen_at - self._fitted_at
        if since >= _REFIT_SECONDS:
            needed = min(_REFIT_EVENTS_QUIET, needed)
        if dirty < needed or (self._fits >= _WARM_FITS and since < _MIN_REFIT_GAP):
            return
        self._fitted_at = self._seen_at
        self._fits += 1
        self._dirty = 0
        self._late_age = self._tail = None  # quantiles of the estimate being replaced
        bins: dict[tuple[float, float], int] = collections.Counter()
        for _, _, lo_bin, hi_bin in self._ended.values():
            bins[lo_bin, hi_bin] += 1
        cohort = [job for job in self._running.values() if job.seq > self._seq - self._history]
        for job in cohort:
            if job.last > 0:
                bins[_log_bin(job.last), math.inf] += 1
        self._mu, self._sigma, self._var_mu = fit(bins, self._prior, (self._mu, self._sigma))
        self._spread = self._sigma
        # Kaplan-Meier's steps joined along the fit's CDF (from (0, 1)): a step function
        # would make "the age by which 1 % more end" jump to the next sample.  (The
        # areas, for `eta`, join them by straight lines: close enough for an ETA.)
        self._times, self._survival, self._area, self._shape = [], [], [], []
        if len(self._ended) < self._min_samples:
            return
        self._times, self._survival, self._area, self._shape = [0.0], [1.0], [0.0], [0.0]
        events = [self._ln_median_between(lo, hi) for lo, hi, _, _ in self._ended.values()]
        censored = [job.last for job in cohort if job.last > 0]
        area, previous_t, previous_s = 0.0, 0.0, 1.0
        for t, s, at_risk in kaplan_meier(events, censored):
            if at_risk < _MIN_AT_RISK or s <= 0:
                break
            area += (previous_s + s) / 2 * (t - previous_t)
            self._times.append(t)
            self._survival.append(s)
            self._area.append(area)
            self._shape.append(1 - self._ln_sf(t))
            previous_t, previous_s = t, s

    def _ln_sf(self, age: float) -> float:
        if age <= 0:
            return 1.0
        return 1 - phi((math.log(age) - self._mu) / self._spread)

    def _ln_excess(self, age: float) -> float:
        """E[(T - age)+] under the fit."""
        mu, sigma = self._mu, self._spread
        if age <= 0:
            return math.exp(mu + sigma**2 / 2) - max(age, 0.0)
        z = (math.log(age) - mu) / sigma
        return math.exp(mu + sigma**2 / 2) * phi(sigma - z) - age * phi(-z)

    def _ln_median_between(self, lo: float, hi: float) -> float:
        p = (1 - self._ln_sf(lo) + 1 - self._ln_sf(hi)) / 2
        if not 0 < p < 1:
            return (lo + hi) / 2
        return min(max(math.exp(self._mu + self._spread * STANDARD_NORMAL.inv_cdf(p)), lo), hi)

    def _sf(self, age: float) -> float:
        if not self._times or age >= self._times[-1]:
            base = self._survival[-1] if self._times else 1.0
            horizon = self._times[-1] if self._times else 0.0
            return base * self._ln_sf(age) / max(self._ln_sf(horizon), 1e-300)
        i = bisect.bisect_right(self._times, age)
        s0, s1 = self._survival[i - 1], self._survival[i]
        g0, g1 = self._shape[i - 1], self._shape[i]
        if g1 - g0 > 1e-9:  # between two steps, the fit's shape
            return s0 + (s1 - s0) * (1 - self._ln_sf(age) - g0) / (g1 - g0)
        t0, t1 = self._times[i - 1], self._times[i]
        return s0 + (s1 - s0) * (age - t0) / max(t1 - t0, 1e-12)

    def _cdf(self, age: float) -> float:
        return 1 - self._sf(age)

    def _inverse(self, p: float) -> float:
        """The smallest age whose CDF reaches *p*."""
        target = 1 - p
        if self._times and target > self._survival[-1]:
            # The survivals decrease: the first point at or below target, then interpolate.
            i = bisect.bisect_left(self._survival, -target, key=lambda s: -s)
            t0, t1 = self._times[i - 1], self._times[i]
            s0, s1 = self._survival[i - 1], self._survival[i]
            g0, g1 = self._shape[i - 1], self._shape[i]
            if g1 - g0 > 1e-9:
                g = min(max(g0 + (g1 - g0) * (s0 - target) / (s0 - s1), 1e-16), 1 - 1e-16)
                age = math.exp(self._mu + self._spread * STANDARD_NORMAL.inv_cdf(g))
                return min(max(age, t0), t1)
            return t0 + (t1 - t0) * (s0 - target) / (s0 - s1)
        base = self._survival[-1] if self._times else 1.0
        horizon = self._times[-1] if self._times else 0.0
        tail = min(max(target / base * self._ln_sf(horizon), 1e-300), 1 - 1e-16)
        quantile = min(max(1 - tail, 1e-16), 1 - 1e-16)  # inv_cdf refuses 0 and 1
        return max(horizon, math.exp(self._mu + self._spread * STANDARD_NORMAL.inv_cdf(quantile)))


def _log_bin(age: float) -> float:
    return round(math.log(age) * _BIN) / _BIN if age > 0 else -math.inf

