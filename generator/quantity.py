"""Kubernetes resource quantities: parsing CPU and memory strings into integers we can add up."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_CPU = re.compile(r"^([0-9]+)(m?)$|^([0-9]+\.[0-9]+)$")
_MEM = re.compile(r"^([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_MEM_FACTOR = {
    None: 1,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}


def cpu_millis(value: str) -> int:
    """'250m' -> 250, '2' -> 2000, '0.5' -> 500. Raises ValueError on anything else."""
    match = _CPU.fullmatch(value)
    if not match:
        raise ValueError(f"{value!r} is not a CPU quantity (use millicores like 250m or cores like 2)")
    whole, milli, decimal = match.groups()
    if decimal is not None:
        millis = Decimal(decimal) * 1000
        if millis != millis.to_integral_value():
            raise ValueError(f"{value!r} is finer than a millicore")
        return int(millis)
    return int(whole) if milli else int(whole) * 1000


def memory_bytes(value: str) -> int:
    """'128Mi' -> 134217728. Only integer quantities with a binary or decimal suffix."""
    match = _MEM.fullmatch(value)
    if not match:
        raise ValueError(f"{value!r} is not a memory quantity (use e.g. 512Mi or 2Gi)")
    number, suffix = match.groups()
    return int(number) * _MEM_FACTOR[suffix]


# The API server's own grammar (k8s.io/apimachinery resource.Quantity), wider than the model's: a decimal number, then
# a binary suffix (Ki..Ei), a decimal one (n, u, m, k, M, G, T, P, E) or a decimal exponent (e3, E-2). What charts
# render and what the diff compares are read with it.
_QUANTITY = re.compile(r"^([+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:[eE]([+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$")
_FACTOR = {None: Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
           "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12,
           "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
           **{s: Decimal(2) ** (10 * (i + 1)) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))}}


def kubernetes_quantity(value: str) -> Decimal:
    """Any quantity the API server accepts, exactly: '1.5Gi' -> 1610612736, '1e3' -> 1000, '250m' -> 0.25.
    Raises ValueError on anything else."""
    match = _QUANTITY.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    number, exponent, suffix = match.groups()
    try:
        amount = Decimal(number)
    except InvalidOperation as exc:  # pragma: no cover - the pattern only lets numbers through
        raise ValueError(f"{value!r} is not a Kubernetes quantity") from exc
    return amount * (Decimal(10) ** int(exponent) if exponent else _FACTOR[suffix])


def format_millis(millis: int) -> str:
    return f"{millis}m"


def format_bytes(num: int) -> str:
    """Human form for messages: the largest binary unit that divides exactly, else Mi with decimals."""
    for suffix, factor in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if num % factor == 0 and num >= factor:
            return f"{num // factor}{suffix}"
    return f"{num / 2**20:.1f}Mi"
