"""The output layout, in one place: which files the generator writes, where, and what a path under them means.

    rendered/README.md                       over every environment
    rendered/<env>/apps/<app>.yaml           the component's Argo CD Application (what the root app syncs)
    rendered/<env>/values/<app>.yaml         the Helm values it renders its chart with
    rendered/<env>/manifests/<app>.yaml      its hydrated objects (what Argo CD applies)
    rendered/<env>/crds/<app>.yaml           its CustomResourceDefinitions, apart from the rest
    rendered/<env>/nodes.yaml                the model's nodes, as Node objects (for the cross-object checks)
    rendered/<env>/README.md                 topology and capacity page
    argocd/README.md                         the bootstrap, how to apply it
    argocd/<env>/{root.yaml,argocd-cm.yaml}  applied by hand
    argocd/<env>/projects/<project>.yaml     AppProjects, synced by the root Application
    schema/*.schema.json                     editor schemas of values/
    charts/<chart>/values.schema.json        each local chart's values schema (the only generated file in charts/)

Every other module asks this one (Layout for one environment's paths, `place` to read a path back) instead of
spelling a path itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

RENDERED, BOOTSTRAP, SCHEMA = "rendered", "argocd", "schema"
TOPS = (RENDERED, BOOTSTRAP)  # the directories that hold what Argo CD and the cluster see
MANAGED_DIRS = (RENDERED, BOOTSTRAP, SCHEMA)  # owned whole by the generator (plus CHART_SCHEMA files)
CHART_SCHEMA = "charts/{chart}/values.schema.json"
APP_DIRS = ("apps", "values", "manifests", "crds")  # rendered/<env>/<dir>/<app>.yaml
ROOT_README, BOOTSTRAP_README = f"{RENDERED}/README.md", f"{BOOTSTRAP}/README.md"

_APP_FILE = re.compile(rf"^{RENDERED}/(?P<env>[^/]+)/(?P<dir>{'|'.join(APP_DIRS)})/(?P<app>[^/]+)\.ya?ml$")


@dataclass(frozen=True)
class Layout:
    """Where one environment's files live in the repository, as Argo CD sees it (paths relative to the repo root)."""

    environment: str

    @property
    def rendered_dir(self) -> str:
        return f"{RENDERED}/{self.environment}"

    @property
    def apps_dir(self) -> str:
        return f"{self.rendered_dir}/apps"

    @property
    def manifests_dir(self) -> str:
        return f"{self.rendered_dir}/manifests"

    def values_file(self, app: str) -> str:
        return f"{self.rendered_dir}/values/{app}.yaml"

    def app_file(self, app: str) -> str:
        return f"{self.apps_dir}/{app}.yaml"

    def manifest_file(self, app: str) -> str:
        return f"{self.manifests_dir}/{app}.yaml"

    def crds_file(self, app: str) -> str:
        """An app's CustomResourceDefinitions, apart: megabytes of schema that would bury its other objects."""
        return f"{self.rendered_dir}/crds/{app}.yaml"

    @staticmethod
    def chart_dir(chart: str) -> str:
        return f"charts/{chart}"

    @property
    def overview_file(self) -> str:
        """The environment's topology and capacity page (overview.py), written after hydration."""
        return f"{self.rendered_dir}/README.md"

    @property
    def nodes_file(self) -> str:
        return f"{self.rendered_dir}/nodes.yaml"

    # The bootstrap of the environment, applied by hand (argocd/README.md).
    @property
    def bootstrap_dir(self) -> str:
        return f"{BOOTSTRAP}/{self.environment}"

    @property
    def root_file(self) -> str:
        return f"{self.bootstrap_dir}/root.yaml"

    @property
    def argocd_cm_file(self) -> str:
        return f"{self.bootstrap_dir}/argocd-cm.yaml"

    @property
    def projects_dir(self) -> str:
        return f"{self.bootstrap_dir}/projects"

    def project_file(self, project: str) -> str:
        return f"{self.projects_dir}/{project}.yaml"

    def owns(self, path: str) -> bool:
        """Whether a generated file belongs to this environment (the rest, READMEs and schemas, to all)."""
        return path.startswith((f"{self.rendered_dir}/", f"{self.bootstrap_dir}/"))

    def in_manifests(self, path: str) -> bool:
        return path.startswith(f"{self.manifests_dir}/")


class Place(NamedTuple):
    """What a path under rendered/<env>/<dir>/<app>.yaml is; Nones for any other path."""

    env: str | None
    dir: str | None
    app: str | None


def place(path: str) -> Place:
    m = _APP_FILE.match(path)
    return Place(m["env"], m["dir"], m["app"]) if m else Place(None, None, None)


def is_generated(path: str) -> bool:
    """Under a directory the generator owns, or one of its files elsewhere (a chart's values schema)."""
    top, _, rest = path.partition("/")
    return top in MANAGED_DIRS or (top == "charts" and rest.count("/") == 1 and rest.endswith("/values.schema.json"))


def seen_by_cluster(path: str) -> bool:
    """A YAML file under rendered/ or argocd/: what Argo CD or the cluster reads (READMEs and schemas are not)."""
    return path.startswith(tuple(f"{t}/" for t in TOPS)) and path.endswith((".yaml", ".yml"))


def environment_files(files: dict[str, bytes], env: str) -> dict[str, bytes]:
    """What one environment's validation sees: its own tree and bootstrap, and the files common to all."""
    layout = Layout(env)
    return {p: b for p, b in files.items() if layout.owns(p) or not p.startswith(tuple(f"{t}/" for t in TOPS))}
