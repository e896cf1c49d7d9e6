# Two commands: `make lab` opens the course, `make test` runs every check.
# Both create .venv when missing and (re)install the project only when pyproject.toml changed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
START  := $(firstword $(wildcard notebooks/00_start_here.ipynb) notebooks)
LAB_PORT ?= 8888

# Headless machines (no display) get --no-browser; root needs --allow-root.
LAB_FLAGS :=
ifeq ($(strip $(DISPLAY)$(WAYLAND_DISPLAY)),)
ifneq ($(shell uname -s),Darwin)
LAB_FLAGS += --no-browser
endif
endif
ifeq ($(shell id -u),0)
LAB_FLAGS += --allow-root
endif

PYTEST_NB := --nbval --nbval-sanitize-with nbval_sanitize.cfg

.PHONY: setup lab test test-unit test-notebooks notebooks exercises bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)

lab: setup
	@token=$$($(PY) -c "import secrets; print(secrets.token_hex(24))"); \
	echo ""; \
	echo "The course is starting. Open this URL in your browser (Ctrl+C twice stops the server):"; \
	echo "    http://127.0.0.1:$(LAB_PORT)/lab/tree/$(START)?token=$$token"; \
	echo "(port busy? run: make lab LAB_PORT=8890)"; \
	echo ""; \
	$(PY) -m jupyter lab $(LAB_FLAGS) --port=$(LAB_PORT) --ServerApp.port_retries=0 \
		--IdentityProvider.token=$$token $(START)

# The whole suite: unit, property and conformance tests, the printout and classroom checks,
# and strict nbval over every lesson and solution, on 2 workers (one notebook per worker).
test: setup
	$(PY) -m pytest -n 2 --dist loadfile -rs $(PYTEST_NB) notebooks tests solutions

test-unit: setup
	$(PY) -m pytest -p no:nbval -rs tests

test-notebooks: setup
	$(PY) -m pytest -n 2 --dist loadfile $(PYTEST_NB) notebooks solutions

# Re-execute and store every lesson and solution (review `git diff` afterwards).
notebooks: setup
	$(PY) tools/execute_notebooks.py notebooks/*.ipynb solutions/*.ipynb

# Regenerate exercises/ (student notebooks) from solutions/; running it twice changes nothing.
exercises: setup
	$(PY) -m course_tools generate

clean:
	rm -rf $(VENV) build *.egg-info

# Performance targets measured beside baselines in one run (not part of `make test`).
bench: setup
	$(PY) -m benchmarks.run --out benchmarks/results.json
