# `make check` mirrors CI: format, lint, import layers, types, tests.
.PHONY: check fmt lint imports types test test-fast
check: lint imports types test
fmt:
	ruff format flowaudit tests benchmarks notebooks
lint:
	ruff check flowaudit tests benchmarks notebooks
	ruff format --check flowaudit tests benchmarks notebooks
imports:
	lint-imports
types:
	mypy
test:
	python -m pytest -q
# the unit tests only (no end-to-end runs over samples, notebooks or the daily job)
test-fast:
	python -m pytest -q -m "not slow"
