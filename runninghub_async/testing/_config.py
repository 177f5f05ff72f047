"""The fake's knobs, validated once at construction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs

__all__ = ["KEY_TYPES", "FakeConfig"]

KEY_TYPES = ("NORMAL", "SHARED", "EXCLUSIVE")


@attrs.frozen(kw_only=True)
class FakeConfig:
    """Everything about the fake that does not change while it runs (see `FakeRunningHub`)."""

    api_keys: tuple[str, ...]
    key_types: Mapping[str, str]
    concurrency_limit: int | None
    rate_limit: float | None
    failure_rate: float
    failure_codes: tuple[str, ...]
    upload_max_bytes: int
    validate: bool
    webhook_attempts: int
    webhook_retry_delay: float
    webhook_timeout: float
    concurrent_limit_report: int
    currency: str
    remain_money: str
    remain_coins: str
    cancel_not_found_code: int
    host: str
    port: int

    def key_type(self, api_key: str) -> str:
        """The ``apiType`` of *api_key* (``"SHARED"`` unless configured)."""
        return self.key_types.get(api_key, "SHARED")


def make_config(
    *,
    api_keys: Iterable[str],
    key_types: Mapping[str, str] | None,
    concurrency_limit: int | None,
    rate_limit: float | None,
    failure_rate: float,
    failure_codes: Sequence[str],
    upload_max_bytes: int,
    validate: bool,
    webhook_attempts: int,
    webhook_retry_delay: float,
    webhook_timeout: float,
    concurrent_limit_report: int | None,
    currency: str,
    remain_money: str,
    remain_coins: str,
    cancel_not_found_code: int,
    host: str,
    port: int,
) -> FakeConfig:
    """Check every knob and build the `FakeConfig`.

    Raises:
        ValueError: a knob is out of range (the message names it).
    """
    keys = tuple(api_keys)
    if isinstance(api_keys, str) or not keys or not all(isinstance(k, str) and k for k in keys):
        raise ValueError("api_keys must be a non-empty collection of non-empty strings")
    types = dict(key_types or {})
    for key, kind in types.items():
        if kind not in KEY_TYPES:
            raise ValueError(f"key_types[{key!r}] must be one of {KEY_TYPES}, got {kind!r}")
    if concurrency_limit is not None and concurrency_limit < 1:
        raise ValueError(f"concurrency_limit must be None or >= 1, got {concurrency_limit!r}")
    if not 0.0 <= failure_rate <= 1.0:
        raise ValueError(f"failure_rate must be between 0 and 1, got {failure_rate!r}")
    codes = tuple(failure_codes)
    if isinstance(failure_codes, str) or (failure_rate > 0 and not codes):
        raise ValueError("failure_codes must be a non-empty sequence of code strings")
    if upload_max_bytes < 0:
        raise ValueError(f"upload_max_bytes must be >= 0, got {upload_max_bytes!r}")
    if webhook_attempts < 1:
        raise ValueError(f"webhook_attempts must be >= 1, got {webhook_attempts!r}")
    if webhook_retry_delay < 0 or webhook_timeout <= 0:
        raise ValueError("webhook_retry_delay must be >= 0 and webhook_timeout > 0")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be between 0 and 65535, got {port!r}")
    report = concurrent_limit_report
    if report is None:
        report = concurrency_limit if concurrency_limit is not None else 50
    return FakeConfig(
        api_keys=keys,
        key_types=types,
        concurrency_limit=concurrency_limit,
        rate_limit=rate_limit,
        failure_rate=failure_rate,
        failure_codes=codes,
        upload_max_bytes=upload_max_bytes,
        validate=validate,
        webhook_attempts=webhook_attempts,
        webhook_retry_delay=webhook_retry_delay,
        webhook_timeout=webhook_timeout,
        concurrent_limit_report=report,
        currency=currency,
        remain_money=remain_money,
        remain_coins=remain_coins,
        cancel_not_found_code=cancel_not_found_code,
        host=host,
        port=port,
    )
