"""Secrets kept out of what the diff shows: values at credential paths, and credential-shaped text anywhere."""

from __future__ import annotations

from typing import Any

from .. import credentials
from .fields import Name, _list_names


REDACTED = credentials.REDACTED


def redact_text(text: str) -> str:
    """Credentials that are recognisable by their shape, wherever they occur in a string."""
    return credentials.redact_text(text)


def redact(value: Any, parts: tuple = (), kind: str = "") -> Any:
    """A copy of `value` (found at `parts` in an object of `kind`) with secret-like values replaced by <redacted>."""
    if isinstance(value, dict):
        return {k: redact(v, parts + (str(k),), kind) for k, v in value.items()}
    if isinstance(value, list):
        names = _list_names(value)
        return [redact(v, parts + ((Name(names[i]),) if names is not None else (i,)), kind) for i, v in enumerate(value)]
    if value is None or isinstance(value, bool):
        return value  # `automountServiceAccountToken: false` is not a secret
    if credentials.sensitive(parts, kind):
        return REDACTED
    return redact_text(value) if isinstance(value, str) else value
