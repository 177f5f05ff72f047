"""Prices before spending: the catalog's fallback price, and `CostBudget` for ``max_cost``.

RunningHub's price preview is the source of truth (``RunningHub.price``).  Where
it gives no price, the packaged catalog's is used: CNY per call, per image
(times ``imageNum``/``n``/``maxImages`` when set), per second or per five
seconds (times ``duration``, else the model's default, else 5 s), or per 1000
characters (of ``text``, else ``prompt``).  Catalog prices may be out of date.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from . import _catalog
from ._errors import ProtocolError, RunningHubError
from ._extras_models import Price
from ._nodes import is_local_file

__all__ = [
    "BudgetExceededError",
    "CostBudget",
    "catalog_price",
    "checked_price",
    "preview_params",
]

CATALOG_CURRENCY: Final = "CNY"
_PER_SECONDS: Final = {"second": 1.0, "second (minimum)": 1.0, "5 seconds": 5.0}
_DEFAULT_SECONDS: Final = 5.0
_COUNT_PARAMS: Final = ("imageNum", "n", "maxImages")
_CENT: Final = Decimal("0.0001")

PriceOf = Callable[[str, Mapping[str, Any]], Awaitable[Price]]


class BudgetExceededError(RunningHubError):
    """The next item would have passed ``max_cost``: it was not submitted, nor any after it.

    Attributes:
        limit: the budget.
        spent: the estimated cost of the items submitted before it.
        price: the item's estimated price.
    """

    def __init__(self, limit: Decimal, spent: Decimal, price: Decimal, currency: str) -> None:
        self.limit = limit
        self.spent = spent
        self.price = price
        super().__init__(
            f"not submitted: {price} {currency} more would pass max_cost {limit} "
            f"({spent} {currency} already committed)"
        )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:  # an int past float's range: counted as infinite, so unpriced
        return math.inf
    except (TypeError, ValueError):
        return None
    # An infinite count or duration stays infinite (no price), never the default.
    return number if number > 0 else None


def catalog_price(path: str, params: Mapping[str, Any]) -> Price | None:
    """The packaged catalog's price of one call of *path* with *params* (CNY), or None."""
    spec = _catalog.lookup(path)
    if spec is None:
        return None
    price = spec.price_for(params)
    if price is None:
        return None
    unit = spec.price_unit or "call"
    amount = float(price)
    if unit in _PER_SECONDS:
        default = spec.param("duration")
        seconds = _number(params.get("duration")) or _number(
            default.default if default is not None else None
        )
        amount *= (seconds or _DEFAULT_SECONDS) / _PER_SECONDS[unit]
    elif unit == "image":
        amount *= next((n for p in _COUNT_PARAMS if (n := _number(params.get(p)))), 1.0)
    elif unit == "1000 characters":
        text = params.get("text") or params.get("prompt") or ""
        amount *= max(1, math.ceil(len(str(text)) / 1000))
    try:
        if not math.isfinite(amount) or amount < 0:
            raise InvalidOperation
        value = Decimal(str(amount)).quantize(_CENT).normalize()
    except InvalidOperation:
        # An absurd duration or count (1e308 images) has no price to the cent:
        # none, rather than an infinite or raw decimal error in a budget.
        return None
    return Price(
        value,
        CATALOG_CURRENCY,
        f"{value} {CATALOG_CURRENCY} per call (catalog price per {unit})",
        source="catalog",
        endpoint=spec.path,
    )


def checked_price(price: Price, what: str) -> Price:
    """*price* if its amount is a finite amount >= 0, else a `ProtocolError`.

    A budget adds prices up: a negative one would make room for more items, a
    NaN makes every comparison fail, an infinite one is no price.  They fail
    closed, so nothing is submitted on their account.
    """
    amount = price.amount
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
        raise ProtocolError(f"{what} is not a finite amount >= 0: {str(amount)[:40]!r}")
    return price


def preview_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """*params* with local files replaced by a placeholder name, for the price preview.

    A preview should not upload anything; a price depends on the params, not on
    a file's bytes.
    """

    def plain(value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return "local-file" if is_local_file(value) else value

    return {name: plain(value) for name, value in params.items()}


def _canonical(params: Mapping[str, Any]) -> str:
    return json.dumps(preview_params(params), sort_keys=True, default=repr, ensure_ascii=False)


def _amount(value: Decimal | float | int | str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"max_cost must be a number, got {value!r}") from None
    if isinstance(value, bool) or not amount.is_finite() or amount < 0:
        raise ValueError(f"max_cost must be a number >= 0, got {value!r}")
    return amount


class CostBudget:
    """Stops a batch before its estimated cost would pass *limit*.

    ``reserve`` is asked before each item is submitted, in input order: it
    prices the item (one price preview per distinct endpoint and params; the
    answers are cached) and says whether it still fits.  The first item that
    does not fit closes the budget: every later ``reserve`` says no, so a batch
    stops rather than skipping to cheaper items.  ``release`` gives an item's
    price back when its submit was refused (nothing was spent).

    Not safe across threads; one event loop only.

    Args:
        price_of: ``RunningHub.price`` (or any ``async (endpoint, params) -> Price``).
        limit: the most the batch may cost, in the account's currency.
    """

    def __init__(self, price_of: PriceOf, limit: Decimal | float | int | str) -> None:
        self._price_of = price_of
        self.limit = _amount(limit)
        self.spent = Decimal(0)
        """The estimated cost of the items reserved and not released."""
        self.currency: str | None = None
        """The currency of the prices seen (None before the first)."""
        self.refused: Price | None = None
        """The price of the first item that did not fit, once one did not."""
        self._cache: dict[tuple[str, str], Price] = {}

    async def price(self, endpoint: str, params: Mapping[str, Any]) -> Price:
        """The (cached) price of one item."""
        key = (endpoint, _canonical(params))
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = await self._price_of(endpoint, params)
        return cached

    async def reserve(self, endpoint: str, params: Mapping[str, Any]) -> bool:
        """Whether the item fits the budget; if it does, its price counts as spent.

        Raises:
            ValueError: its price is in another currency than the earlier ones.
            ProtocolError: its price is negative, NaN or infinite (not reserved).
            Everything ``RunningHub.price`` raises.
        """
        if self.refused is not None:
            return False
        price = checked_price(await self.price(endpoint, params), f"the price of {endpoint}")
        if self.currency is None:
            self.currency = price.currency
        elif price.currency != self.currency:
            raise ValueError(
                f"{endpoint} is priced in {price.currency}, earlier items in {self.currency}; "
                "max_cost cannot add them up"
            )
        # No await between the check and the update: concurrent reserves cannot both fit.
        if self.refused is not None or self.spent + price.amount > self.limit:
            self.refused = self.refused or price
            return False
        self.spent += price.amount
        return True

    def release(self, endpoint: str, params: Mapping[str, Any]) -> None:
        """Give back the price reserved for an item that was not accepted."""
        price = self._cache.get((endpoint, _canonical(params)))
        if price is not None:
            self.spent = max(Decimal(0), self.spent - price.amount)

    def exceeded(self) -> BudgetExceededError:
        """The error for the items a closed budget kept from being submitted."""
        price = self.refused.amount if self.refused is not None else Decimal(0)
        return BudgetExceededError(self.limit, self.spent, price, self.currency or "")
