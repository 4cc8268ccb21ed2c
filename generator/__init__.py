"""Eco² GitOps generator: values/ (typed model) -> rendered/ and argocd/ (Helm values, Applications, manifests)."""
