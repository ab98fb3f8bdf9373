"""Making whatever users type safe to store: bounded, encodable, never a reason to crash.

Text only ever reaches SQLite as a bound parameter; this module is about size and encoding.
"""

from __future__ import annotations

MAX_NAME_CHARS = 100
MAX_ID_CHARS = 100
MAX_REQUEST_CHARS = 1000
MAX_REASON_CHARS = 300
MAX_ERROR_CHARS = 500
ELLIPSIS = "…"


def cap(text: object, limit: int) -> str:
    """Shorten over-long text with an ellipsis instead of refusing it.

    NULs are dropped (they cut strings short in SQLite's C functions) and lone surrogates, which
    UTF-8 cannot encode and which would make the driver raise, become ``?``.
    """
    value = encodable(str(text).replace("\x00", ""))
    if len(value) <= limit:
        return value
    return value[: max(0, limit - len(ELLIPSIS))] + ELLIPSIS


def encodable(text: str) -> str:
    """Text UTF-8 can carry: lone surrogates (from broken clients) become ``?``."""
    return text.encode("utf-8", "replace").decode("utf-8")


def cap_name(text: object, limit: int = MAX_NAME_CHARS) -> str:
    """A display name on one line, trimmed and capped; an empty one becomes ``?``."""
    return cap(" ".join(str(text).split()), limit) or "?"
