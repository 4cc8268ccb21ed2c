# Every target bootstraps its own virtualenv (.venv) and tools (.cache/); nothing needs installing first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The stamp's name carries the hash of pyproject.toml, so changed dependencies reinstall by themselves.
STAMP := $(VENV)/.stamp-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
GEN := $(PY) -m generator
# ENV=<environment> on the command line limits render, check, validate and set-image to one environment (default:
# every one); an ENV exported by the shell (sh reads its startup file from it) is not taken for one.
ENV_FLAG = $(if $(filter command line,$(origin ENV)),--env '$(ENV)')

.DEFAULT_GOAL := help
.PHONY: help venv render check test validate schemas charts helm-lint lint diff set-image promote envs capacity bench bench-scale mutation clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@rm -f $(VENV)/.stamp-* && touch $@

venv: $(STAMP) ## Create or update .venv only (CI calls .venv/bin/python -m generator ... after it)

# The upstream CRD schemas validation needs: $ECO2_CRDS, ../shared/crds, or the pinned download
# (sha256-checked, skipped when .cache/crds is already complete).
CRDS = test -n "$${ECO2_CRDS:-}" -o -d ../shared/crds || $(PY) -m generator.upstream.crds fetch >&2
# The upstream Helm charts: $ECO2_CHARTS, ../shared/charts, or helm pull of the pinned charts
# (sha256-checked against charts.lock, skipped when .cache/charts already holds verified copies).
CHARTS = test -n "$${ECO2_CHARTS:-}" -o -d ../shared/charts || $(PY) -m generator.upstream.charts fetch >&2

render: $(STAMP) ## Render values/ into rendered/, argocd/ and the schemas (validated, all or nothing)
	@$(CRDS)
	@$(CHARTS)
	@$(GEN) render $(ENV_FLAG)

check: $(STAMP) ## Fail with a diff if anything generated is out of step with values/ or charts/
	@$(CRDS)
	@$(CHARTS)
	@$(GEN) check $(ENV_FLAG)

validate: $(STAMP) ## Validate rendered/ and argocd/ on disk: schemas, cross-object references, policy
	@$(CRDS)
	@$(CHARTS)
	@$(GEN) validate $(ENV_FLAG)

schemas: $(STAMP) ## Download the pinned upstream CRDs (schemas.lock, sha256-checked) into .cache/crds
	@$(PY) -m generator.upstream.crds fetch

charts: $(STAMP) ## Pull the pinned upstream Helm charts (charts.lock, sha256-checked) into .cache/charts
	@$(PY) -m generator.upstream.charts fetch

helm-lint: $(STAMP) ## helm lint --strict every chart with every ci/*-values.yaml scenario
	@$(GEN) helm-lint

bench: $(STAMP) ## Time render (full, warm, no-change), validation and diff; prints medians of 5
	@$(PY) bench/render_bench.py
	@$(PY) bench/validate_bench.py
	@$(PY) bench/diff_bench.py

bench-scale: $(STAMP) ## CLI on synthetic models of N services vs. a helm loop: BENCH_N=100,300,1000 [BENCH_PROFILE=1]
	@$(CRDS)
	@$(CHARTS)
	@$(PY) bench/scale.py

diff: $(STAMP) ## What changes in the cluster since a ref: make diff BASE=<ref> [FORMAT=markdown] (danger: CLI exit 3)
	@test -n "$(BASE)" || { echo "usage: make diff BASE=<git ref> [FORMAT=text|markdown]" >&2; exit 2; }
	@$(PY) -m generator diff --base $(BASE) --format $(or $(FORMAT),text)

set-image: $(STAMP) ## Pin an image and re-render: make set-image COMPONENT=<name> TAG=<tag-or-digest> [ENV=<env>]
	@test -n "$(COMPONENT)" -a -n "$(TAG)" || { echo "usage: make set-image COMPONENT=<name> TAG=<tag-or-digest> [ENV=<env>]" >&2; exit 2; }
	@$(CRDS)
	@$(CHARTS)
	@$(PY) -m generator set-image '$(COMPONENT)' '$(TAG)' $(ENV_FLAG)

promote: $(STAMP) ## Copy release fields between environments: make promote FROM=<env> TO=<env> [COMPONENT=<name>...]
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make promote FROM=<env> TO=<env> [COMPONENT='<name> ...']" >&2; exit 2; }
	@$(CRDS)
	@$(CHARTS)
	@$(PY) -m generator promote --from '$(FROM)' --to '$(TO)' $(COMPONENT)

capacity: $(STAMP) ## Per node: allocatable, requests at steady state and at peak, headroom [ENV=<env>]
	@$(GEN) capacity $(ENV_FLAG)

envs: $(STAMP) ## Release fields (images, charts) that differ between environments [FORMAT=json]
	@$(PY) -m generator envs --format $(or $(FORMAT),text)

# tools/servers/install.sh: the Debian packages of the real servers tests/test_servers.py uses (PostgreSQL, Redis and
# their exporters); does nothing once they are there, and only notes what is missing when it cannot install (not root).
test: $(STAMP) ## Run the whole test suite (as root, first installs the servers it runs: tools/servers/install.sh)
	@$(CRDS)
	@$(CHARTS)
	@bash tools/servers/install.sh
	@$(PY) -m pytest -q -n 2

# Mutation testing (not part of `make test`). MUTATION_SCOPE is what gets mutated, as mutmut mutant names
# (<module>.x_<function>__mutmut_<n>): a whole module, or some functions of one. A module named here must also be
# listed in only_mutate of [tool.mutmut] in pyproject.toml, which also says which fast tests each mutant runs.
# capacity.py: only the decision where a pod can run (node labels, affinity, taints and tolerations);
# review/: only its danger and redaction rules; quantity.py: the API server's quantity grammar they read sizes with;
# yamledit.py, envedit.py, release.py: the edits promotion and set-image --env make to values/.
MUTATION_SCOPE ?= generator.model.checks.* generator.validate.references.* generator.edit.setimage.* generator.validate.policy.* \
	generator.credentials.* generator.write.output.* \
	$(foreach f,node_labels _expression _term _affinity _toleration tolerates fits,generator.validate.capacity.x_$(f)__mutmut_*) \
	generator.review.redaction.x_redact__mutmut_* \
	$(foreach f,_quantity _is_volume_size _vct_names _queue_names _queues_of _covers _brief _project_narrowing \
	  _removal_danger _dangers _replacements _restarts _environments_removed,generator.review.dangers.x_$(f)__mutmut_*) \
	generator.review.summary.x__reach__mutmut_* \
	generator.quantity.x_kubernetes_quantity__mutmut_* generator.edit.yamledit.* generator.edit.envedit.* generator.edit.release.*
MUTATION_MIN ?= 90
mutation: $(STAMP) ## Mutation-test the modules that decide safety (mutmut; long, see README; fails under MUTATION_MIN=90 % killed)
	@$(CRDS)
	@rm -rf mutants && mkdir mutants
	@echo "mutmut: mutating $(MUTATION_SCOPE); progress in mutants/mutmut.log" >&2
	@crds="$${ECO2_CRDS:-}"; [ -n "$$crds" ] || { [ -d ../shared/crds ] && crds="$$(cd ../shared/crds && pwd)" || crds="$$PWD/.cache/crds"; }; \
	  ECO2_CRDS="$$crds" $(VENV)/bin/mutmut run --max-children $$(nproc) $(foreach p,$(MUTATION_SCOPE),'$(p)') \
	  > mutants/mutmut.log 2>&1 || { tr '\r' '\n' < mutants/mutmut.log | tail -40 >&2; exit 1; }
	@tr '\r' '\n' < mutants/mutmut.log | grep -m1 'mutations/second' >&2 || true
	@$(PY) tools/mutation/report.py --min $(MUTATION_MIN) $(foreach p,$(MUTATION_SCOPE),'$(p)')

lint: ## Lint .github/workflows with zizmor, check-jsonschema and actionlint (pinned, in .cache/lint)
	@PYTHON=$(PYTHON) bash tools/lint/run.sh

clean: ## Remove the virtualenv and downloaded tools
	rm -rf $(VENV) .cache
