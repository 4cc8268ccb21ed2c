"""Stage 3, render: the plan -> the generated files (Helm values, Applications, bootstrap, schemas, READMEs).

render.py (the tree of generated files), helmvalues.py (each Application's values), chartvalues.py (the values each
local chart accepts), applications.py (Argo CD objects), jsonschemas.py (the editor and chart schemas), overview.py
(the per-environment README), templates/.
"""
