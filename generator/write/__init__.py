"""Stage 6, write: the generated files as one tree, staged, compared with the repository and swapped in whole.

output.py (the tree, staging, the lock, the journalled swap, drift), replay.py (nothing to redo: a run whose every
input is as the last successful run read it).
"""
