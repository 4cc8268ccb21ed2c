"""Summarise a `mutmut run` (make mutation): killed/total per module in scope, the survivors, and a floor.

Reads mutmut's own results (mutants/<module>.meta) and classifies them with mutmut's own table, so the numbers
are mutmut's; only mutants whose names match the scope patterns count (the ones `mutmut run <patterns>` ran).
Exit 1 when the share of killed mutants over all modules is below --min percent.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

KILLED = {"killed", "timeout"}  # a mutant that makes the tests hang is caught too (mutmut counts it so)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--min", type=float, default=0.0, help="fail below this percentage killed, all modules together")
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("scope", nargs="*", default=["*"], help="mutant name patterns, as given to mutmut run")
    args = parser.parse_args()

    metas = sorted((args.root / "mutants").rglob("*.py.meta"))
    if not metas:
        print("no mutmut results under mutants/: run make mutation", file=sys.stderr)
        return 2
    total = Counter()
    survivors: list[tuple[str, str]] = []
    print(f"{'module':32} {'killed':>7} {'total':>6} {'rate':>7}   other")
    for meta in metas:
        module = meta.relative_to(args.root / "mutants").as_posix().removesuffix(".meta")
        codes = {name: code for name, code in json.loads(meta.read_text())["exit_code_by_key"].items()
                 if any(fnmatch.fnmatchcase(name, pattern) for pattern in args.scope)}
        if not codes:
            continue
        statuses = Counter(status_by_exit_code[code] for code in codes.values())
        killed = sum(n for s, n in statuses.items() if s in KILLED)
        other = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()) if s not in KILLED)
        rate = 100 * killed / len(codes) if codes else 100.0
        print(f"{module:32} {killed:7} {len(codes):6} {rate:6.1f}%   {other}")
        total["killed"] += killed
        total["all"] += len(codes)
        survivors += [(name, status_by_exit_code[code]) for name, code in sorted(codes.items())
                      if status_by_exit_code[code] not in KILLED]
    rate = 100 * total["killed"] / total["all"] if total["all"] else 100.0
    print(f"{'all':32} {total['killed']:7} {total['all']:6} {rate:6.1f}%")
    if survivors:
        print("\nnot killed (`.venv/bin/mutmut show <name>` prints the mutation):")
        for name, status in survivors:
            print(f"  {status:10} {name}")
    if rate < args.min:
        print(f"\n{rate:.1f}% killed is below the floor of {args.min:g}%", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
