"""Fixtures for the fake-server tests: asyncio only (aiohttp is asyncio-only)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Run every anyio test on asyncio."""
    return "asyncio"
