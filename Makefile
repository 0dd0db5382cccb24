# meridian: `make preview` (STACK=us|eu|apac) and `make test` work on a fresh machine.
SHELL := /bin/bash
STACK ?= us
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# two install sets (extras in pyproject.toml): preview's base set, and everything `make test` runs
PREVIEW_STAMP := $(VENV)/.installed-preview
STAMP := $(VENV)/.installed
# The installer is uv (pinned in constraints.txt like everything else), which pip puts into the venv:
# it installs the same pins several times faster than pip. INSTALL compiles no bytecode: see `preview`.
GET_UV := $(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt uv
INSTALL := $(BIN)/uv pip install -q --python $(BIN)/python -c constraints.txt

.PHONY: setup setup-preview preview test test-fast test-scale bench sandbox clean fuzz docs lint policy-venv image

setup: $(STAMP)
setup-preview: $(PREVIEW_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# `meridian preview` and `meridian preflight` need only the base set: no Locust, moto, matplotlib,
# Chaos Toolkit, cfn-lint (tests/test_extras.py runs a preview with nothing else importable)
$(PREVIEW_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(GET_UV)
	$(INSTALL) -e .
	touch $@

# The policy pack's own virtualenv, where policies/PulumiPolicy.yaml names it (`virtualenv: venv`):
# the real `pulumi preview/up --policy-pack policies` runs the pack from there (the offline engine
# uses .venv). Its packages: policies/requirements.txt, the same pins as constraints.txt.
POLICY_VENV := policies/venv
policy-venv: $(POLICY_VENV)/.installed
$(POLICY_VENV)/.installed: policies/requirements.txt
	$(PYTHON) -m venv $(POLICY_VENV)
	$(POLICY_VENV)/bin/python -m pip install -q --disable-pip-version-check -r policies/requirements.txt
	touch $@

# the service (the image's packages), the harness (sandbox, load, chaos, drills) and the test tools
# compiled to bytecode at install, as pip did: the suite imports most of what is installed, in many processes
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(GET_UV)
	$(INSTALL) --compile-bytecode -e '.[service,harness,dev]'
	touch $@ $(PREVIEW_STAMP)

# Bytecode is written as modules are first imported (uv's default), for only what a preview imports:
# compiling all of pulumi_aws at install costs more than the whole first preview. Where
# PYTHONDONTWRITEBYTECODE is set, every preview would compile pulumi_aws's modules again (3-5 s).
preview: $(PREVIEW_STAMP)
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/meridian preview --stack $(STACK)

# the lint step first (seconds), then the whole suite on two workers; a module stays on one worker
# (its module-scoped sandbox and the order its tests build on), each worker takes its own ports and state.
# Not the full-scale runs (marker `scale`), whose property `make test` proves at a smaller scale: `make test-scale`
test: lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not scale"

# minutes: the full-scale runs (1,000 tenants through the real program), which CI does not run by default
test-scale: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile -m scale

# under a minute: the lint step, then the pure unit tests (markers `sandbox` and `slow`: pyproject.toml)
test-fast: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not sandbox and not slow"

# ruff (config in pyproject.toml [tool.ruff]): the lint rules, then the formatting, checked without changing a file
lint: $(STAMP)
	$(BIN)/ruff check .; rules=$$?; $(BIN)/ruff format --check . && exit $$rules

bench: $(STAMP)
	$(BIN)/python benchmarks/preview_scale.py
	$(BIN)/python benchmarks/changed_preview.py
	$(BIN)/python benchmarks/zone_scale.py
	$(BIN)/python benchmarks/sandbox_bench.py
	$(BIN)/python benchmarks/drill_bench.py
	$(BIN)/python benchmarks/slo_bench.py
	$(BIN)/python benchmarks/rollout_bench.py

# the service's contract fuzzed longer than `make test` does: Schemathesis against the app in
# process and against a sandbox of its own (tests/test_service_contract.py, test_service_sandbox.py)
FUZZ_EXAMPLES ?= 400
fuzz: $(STAMP)
	MERIDIAN_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) MERIDIAN_FUZZ_SANDBOX_EXAMPLES=$(FUZZ_EXAMPLES) \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_service_contract.py tests/test_service_sandbox.py

# the stack's region pair on 127.0.0.1 (needs the Debian postgresql and haproxy packages);
# then: $(BIN)/meridian sandbox status|down --stack $(STACK)
sandbox: $(STAMP)
	$(BIN)/meridian sandbox up --stack $(STACK)

# regenerate the figures and diagrams in docs/ from the program and the last `make bench` (a test checks them)
docs: $(STAMP)
	$(BIN)/meridian docs --write

# a DR drill on the sandbox, dry run unless ARGS=--execute (DRILL=region-failover|database-failover|failback)
DRILL ?= region-failover
.PHONY: drill
drill: $(STAMP)
	$(BIN)/meridian drill $(DRILL) --stack $(STACK) --target sandbox $(ARGS)

clean:
	rm -rf $(VENV) $(POLICY_VENV) .meridian .pytest_cache *.egg-info build

# the SLO gate against the stack's sandbox (`make sandbox` first); chaos: meridian chaos SCENARIO --stack $(STACK)
.PHONY: slo
slo: $(STAMP)
	$(BIN)/meridian slo --stack $(STACK) --target sandbox

# The service image for every node architecture (Graviton nodes run linux/arm64; x86 nodes linux/amd64),
# pushed to the stack's primary ECR repository (docs/operations.md, step 3); then the build manifest
# build/image/<tag>.json, which `meridian preflight` reads to check the platforms against the node groups.
# REGISTRY=<account>.dkr.ecr.<primary region>.amazonaws.com; repository and tag from the stack config.
IMAGE_PLATFORMS := linux/arm64,linux/amd64
IMAGE_NAME = $(shell $(BIN)/python -c 'from pathlib import Path; from stackconfig import load_stack; w = load_stack(Path("."), "$(STACK)").workload; print(f"{w.repository}:{w.image_tag}")')
image: $(PREVIEW_STAMP)
	@test -n "$(REGISTRY)" || { echo "make image: set REGISTRY=<account>.dkr.ecr.<primary region>.amazonaws.com" >&2; exit 2; }
	@test -n "$(IMAGE_NAME)" || { echo "make image: the $(STACK) stack's config does not load (meridian preview --stack $(STACK))" >&2; exit 2; }
	docker buildx build --platform $(IMAGE_PLATFORMS) -f service/Dockerfile -t $(REGISTRY)/$(IMAGE_NAME) --push .
	mkdir -p build/image
	printf '{"image": "%s", "platforms": "%s"}\n' '$(REGISTRY)/$(IMAGE_NAME)' '$(IMAGE_PLATFORMS)' > build/image/$(lastword $(subst :, ,$(IMAGE_NAME))).json
