"""Stage 4, hydrate: each Application -> plain manifests, by `helm template` as Argo CD's repo-server runs it.

hydrate.py (invocations, normalisation, the twice-rendered check of unstable charts), helmsdk.py (local charts in
process by Helm's Go SDK where that is proven byte-equal). The helm binary itself is generator/helm.py.
"""
