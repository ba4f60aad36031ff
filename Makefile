# Every target installs what it needs: a clean clone on Debian with Python 3.11 is enough.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MFX_HOME ?= $(CURDIR)/.mfx-home
APT := apt-get -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends
# What running needs (build pyalsaaudio and the C plugins, decode, play), and what only the
# tests add: Prometheus (promtool), PulseAudio with its ALSA plugin (a paced sound card) and
# kubectl (kubernetes-client), Chromium for the web UI, tmux for the terminal UI, Graphviz
# for `mfx graph -o svg|png` and etcd for the fleet store.
RUN_PACKAGES := gcc make git libasound2-dev libsndfile1 alsa-utils
TEST_PACKAGES := prometheus pulseaudio libasound2-plugins chromium fonts-dejavu-core tmux graphviz etcd-server etcd-client
STAMP := $(VENV)/.installed


.PHONY: soak
.PHONY: all run test bench lint lint-imports lint-types system system-test venv plugins clean serve bytecode

all: test

# Installs the missing ones of the packages $(1); $(2) is shell that may add more to $$missing.
define install_system_packages
	@mkdir -p $(VENV)
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(2) \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	  $$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO $(APT) install $$missing; \
	fi
	@touch $@
endef

# System packages: `system` for running, `system-test` adds what the tests need.
system: $(VENV)/.system
$(VENV)/.system:
	$(call install_system_packages,$(RUN_PACKAGES),)

system-test: $(VENV)/.system-test
$(VENV)/.system-test: $(VENV)/.system
	$(call install_system_packages,$(TEST_PACKAGES),command -v kubectl >/dev/null 2>&1 || missing="$$missing kubernetes-client";)

venv: $(STAMP)
$(STAMP): pyproject.toml $(VENV)/.system
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { apt-get -y -qq install python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

# The checkout's bytecode, as pip writes an installed package's: every `mfx` started (and each
# daemon's lazily imported modules) then loads it instead of compiling the sources again, even
# where PYTHONDONTWRITEBYTECODE keeps Python from writing it. Files already compiled are skipped.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q -j 0 mfx controllers reconciler observability bench

# The layer contracts in pyproject.toml, read straight from the checkout.
lint-imports: $(STAMP)
	$(BIN)/lint-imports --no-cache

# Static types of the typed layers: the objects, the store and the engine.
TYPED := mfx/api mfx/store reconciler mfx/audio mfx/engine mfx/node
lint-types: $(STAMP)
	$(BIN)/mypy $(TYPED)

plugins: $(STAMP)
	@$(MAKE) -s -C plugins

run: $(STAMP) plugins bytecode
	@$(BIN)/mfx demo --home $(MFX_HOME) --repo $(CURDIR)

serve: $(STAMP) plugins bytecode
	MFX_HOME=$(MFX_HOME) $(BIN)/mfx serve --plugin-path plugins

lint: lint-imports lint-types
	$(BIN)/ruff check .

# --durations: the slowest tests are named in every run, so the suite's time budget is watched.
test: lint-imports plugins bytecode $(VENV)/.system-test
	$(BIN)/pytest -p no:cacheprovider --durations=25 --cov --cov-report=term --cov-fail-under=85 tests

# Only the real-time soak tests: a minute of playback on a paced sound server while the
# control plane churns (they are part of `make test` too).
soak: $(STAMP) plugins bytecode $(VENV)/.system-test
	$(BIN)/pytest -p no:cacheprovider -m soak -v tests

bench: $(STAMP) plugins bytecode $(VENV)/.system-test
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build .mfx-home .coverage* *.egg-info

# The web UI's third-party libraries (graph layout, sparklines), rebuilt from the lock file in
# mfx/webui/assets_src into the checked-in mfx/webui/static/vendor (not part of `make test`).
WEBUI_SRC := mfx/webui/assets_src
WEBUI_VENDOR := mfx/webui/static/vendor
.PHONY: webui-assets
webui-assets:
	cd $(WEBUI_SRC) && npm ci --no-audit --no-fund
	rm -rf $(WEBUI_VENDOR) && mkdir -p $(WEBUI_VENDOR)
	@set -e; for pkg in cytoscape cytoscape-dagre uplot; do \
	  mkdir -p $(WEBUI_VENDOR)/$${pkg/-/_}; cp $(WEBUI_SRC)/node_modules/$$pkg/LICENSE $(WEBUI_VENDOR)/$${pkg/-/_}/; done
	cp $(WEBUI_SRC)/node_modules/cytoscape/dist/cytoscape.min.js $(WEBUI_VENDOR)/cytoscape/
	cp $(WEBUI_SRC)/node_modules/cytoscape-dagre/dist/cytoscape-dagre.min.js $(WEBUI_VENDOR)/cytoscape_dagre/
	cp $(WEBUI_SRC)/node_modules/uplot/dist/uPlot.iife.min.js $(WEBUI_SRC)/node_modules/uplot/dist/uPlot.min.css $(WEBUI_VENDOR)/uplot/
	@cd $(WEBUI_SRC) && node -e 'const l=require("./package-lock.json").packages; for (const k of Object.keys(l)) if (k) console.log(k.replace("node_modules/",""), l[k].version)' > ../static/vendor/VERSIONS
	rm -rf $(WEBUI_SRC)/node_modules  # only the built files are kept (and packaged)
