# `make check` mirrors CI: format, lint, import layers, types, tests.
.PHONY: check fmt lint imports types test test-fast mutation mutation-sql mutation-planted mutmut
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
# two pytest-xdist workers; --dist loadgroup: the Spark tests on one of them (tests/conftest.py)
PYTEST_PARALLEL ?= -n 2 --dist loadgroup
test:
	python -m pytest -q $(PYTEST_PARALLEL)
# the inner loop (~1 min): no end-to-end runs, no external tools, no property tests
test-fast:
	python -m pytest -q -m "not slow" $(PYTEST_PARALLEL)
# mutation testing (tests/MUTATION.md): the issue's planted mutants, the SQL harness, then
# mutmut over the decision modules in a copy of the repository (never the checkout).
# On a shared machine pick modules: make mutmut MUTMUT_ONLY='flowaudit.matrix.model*'
MUTMUT_DIR ?= /tmp/flowaudit-mutmut
MUTMUT_ONLY ?=
mutation: mutation-planted mutation-sql mutmut
mutation-planted:
	timeout 1800 python tests/mutation/planted.py
mutation-sql:
	timeout 5400 python tests/mutation/sql_mutants.py
mutmut:
	rm -rf $(MUTMUT_DIR) && mkdir -p $(MUTMUT_DIR)
	cp -r flowaudit tests rules samples benchmarks pyproject.toml $(MUTMUT_DIR)/
	cd $(MUTMUT_DIR) && timeout 14400 mutmut run --max-children 2 $(MUTMUT_ONLY); \
		mutmut results --all true | tail -n 60
