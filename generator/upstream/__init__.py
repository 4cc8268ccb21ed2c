"""Where the upstream files come from: pinned, checksum-verified chart archives and CRD schemas.

upstream.py (the order of preference), charts.py (charts.lock, `python -m generator.upstream.charts fetch`),
crds.py (schemas.lock, `python -m generator.upstream.crds fetch`).
"""
