"""Stage 2, the plan: every fact derived from one environment's checked model, computed once.

plan.py (the immutable Plan every later stage reads), resolve.py (components, placement, delivery, pod counts),
wiring.py (how components reach each other: endpoints, connection env, NetworkPolicy rules).
"""
