"""Eco² GitOps generator: values/ (typed model) -> rendered/ and argocd/ (Helm values, Applications, manifests).

A directory per stage of a run, in the order pipeline.py runs them (each __init__.py says what its modules do):
model/ (values/ read and checked) -> plan/ (every derived fact, once) -> render/ (values files, Applications,
schemas, READMEs) -> hydrate/ (helm template) -> validate/ (schemas, cross-object checks, capacity, policy) ->
write/ (staged, compared, swapped in whole). Beside them: review/ (`diff`), edit/ (`set-image`, `promote`), kinds/
(one module per kind of infra or controller component), upstream/ (pinned charts and CRDs), cli/ (the commands);
at the top, what the stages share (layout, memo, yamlio, parallel, helm, errors, ...).
"""
