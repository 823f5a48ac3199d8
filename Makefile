# The two set-up commands are `make run` and `make test`; the rest are what they are built from.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench mutate lint typecheck contracts migrations-check totp clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	scripts/run-dev

test: $(STAMP)
	scripts/test

bench: $(STAMP)
	scripts/bench

# Mutation testing of the safety-critical modules, each against its own fast tests (outside `make test`: minutes,
# not seconds). make mutate MODULES="tfn audit" for some; scripts/mutate.py --list for what there is.
mutate: $(STAMP)
	$(PY) scripts/mutate.py $(MODULES)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	DJANGO_DEBUG=1 $(VENV)/bin/mypy .

contracts: $(STAMP)
	$(VENV)/bin/lint-imports

# The current authenticator code of a demo user: make totp USER=admin
totp: $(STAMP)
	DJANGO_DEBUG=1 $(PY) manage.py totp_code $(USER)

clean:
	rm -rf $(VENV) var
