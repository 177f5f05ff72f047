"""Keeping the API key out of what a server echoes: plain, re-cased or JSON-escaped."""

from __future__ import annotations

import re

__all__ = ["KeyScrubber"]


class KeyScrubber:
    """Blanks out one API key in texts and in answer bodies."""

    def __init__(self, api_key: str) -> None:
        self._text = re.compile(re.escape(api_key), re.IGNORECASE) if api_key else None
        self._echoed = _echoes(api_key) if api_key else None
        self._lower = api_key.lower().encode()

    def text(self, text: str) -> str:
        """*text* with the key blanked out, in any case."""
        return self._text.sub("***", text) if self._text is not None else text

    def body(self, body: bytes) -> bytes:
        """*body* with the key blanked out in any case and any JSON spelling.

        Cheap when the key is not there: an escaped or re-cased echo is the only
        one `text` (applied once the body is text) could miss, and the JSON
        decoder would unescape it.
        """
        if self._echoed is None:
            return body
        if b"\\" in body or self._lower in body.lower():
            return self._echoed.sub(b"***", body)
        return body


def _echoes(key: str) -> re.Pattern[bytes]:
    """*key* as JSON may spell it: any character as ``\\uXXXX``, ``/`` also as ``\\/``.

    A server that echoes the key in a JSON string may escape it so; the plain
    form matches too, in any case (an echo may be upper-cased).
    """
    parts: list[str] = []
    for char in key:
        code = "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in f"{ord(char):04x}")
        forms = [re.escape(char), r"\\u" + code] + ([r"\\/"] if char == "/" else [])
        parts.append(f"(?:{'|'.join(forms)})")
    return re.compile("".join(parts).encode(), re.IGNORECASE)
