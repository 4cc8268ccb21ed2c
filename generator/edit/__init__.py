"""Edits of values/: comment-preserving, byte-exact, validated before any write.

yamledit.py (one scalar set in YAML text), setimage.py (pin an image), envedit.py (set values in one environment's
effective model), release.py (what `promote` copies between environments and `envs` compares).
"""
