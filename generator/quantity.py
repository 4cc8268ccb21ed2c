"""Kubernetes resource quantities: parsing CPU and memory strings into integers we can add up."""

from __future__ import annotations

import re
from decimal import Decimal

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


def format_millis(millis: int) -> str:
    return f"{millis}m"


def format_bytes(num: int) -> str:
    """Human form for messages: the largest binary unit that divides exactly, else Mi with decimals."""
    for suffix, factor in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if num % factor == 0 and num >= factor:
            return f"{num // factor}{suffix}"
    return f"{num / 2**20:.1f}Mi"
