# `make check` mirrors CI: format, lint, types, tests.
.PHONY: check fmt lint types test
check: lint types test
fmt:
	ruff format flowaudit tests benchmarks notebooks
lint:
	ruff check flowaudit tests benchmarks notebooks
	ruff format --check flowaudit tests benchmarks notebooks
types:
	mypy
test:
	python -m pytest -q
