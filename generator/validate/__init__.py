"""Stage 5, validate: the generated tree against the real schemas, across objects, and against policy.

validation.py (one environment's findings, waivers, findings tied to the model), kubeschema.py (Kubernetes and CRD
schemas, offline), objects.py (the rendered objects, indexed), references.py (cross-object references), capacity.py
(what the pods request, per node), policy.py (images, resources, probes, Pod Security, credentials), orphans.py
(what the model declares and nothing uses).
"""
