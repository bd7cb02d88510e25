# The two commands a user needs are `make lab` and `make test`; everything else is a part of them.
SHELL := /bin/bash
VENV ?= .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
PYTEST := $(VENV)/bin/pytest
# The role's argument_specs.yml and README key tables, generated from the pydantic models.
DOCS := PYTHONPATH=$(CURDIR)/src $(VENV)/bin/python -m nat_gateway_ha.inventory.docs --root $(CURDIR)

.PHONY: bootstrap test check docs lint unit molecule lab lab-down lab-status bench bench-agent bench-throttle bench-faults clean

bootstrap:
	@scripts/bootstrap

## make test: every check and test, the command CI runs
test: bootstrap lint unit molecule

## make check: the fast loop, without root: ruff, mypy, yamllint and the pure tests (no moto, Ansible, netns)
check:
	@test -x $(VENV)/bin/pytest || { echo "run make bootstrap (as root) once first"; exit 2; }
	ruff check src tests library plugins bench
	ruff format --check src tests library plugins bench
	mypy
	yamllint -s .
	$(DOCS) --check
	$(PYTEST) -q -m "not cloud and not ansible and not netns and not lab" tests

## make docs: regenerate meta/argument_specs.yml and the README's key tables after changing a model
docs:
	$(DOCS) --write

lint: bootstrap
	ruff check src tests library plugins bench
	ruff format --check src tests library plugins bench
	mypy
	yamllint -s .
	$(DOCS) --check
	ansible-playbook --syntax-check -i inventories/example playbooks/site.yml playbooks/render.yml playbooks/failover.yml playbooks/provision.yml playbooks/teardown.yml
	ansible-lint --profile production
	promtool check rules monitoring/prometheus/alerts.yml
	promtool test rules monitoring/prometheus/alerts_test.yml

unit: bootstrap
	$(PYTEST) -q tests

molecule: bootstrap
	cd $(CURDIR) && molecule test --all

## make lab: build the lab and converge it with site.yml
lab: bootstrap
	natgw-lab up
	ansible-playbook -i inventories/lab site.yml
	natgw-lab status --wait 30

lab-down: bootstrap
	natgw-lab down

lab-status: bootstrap
	natgw-lab status

## make bench-agent: the agent alone against moto, then the same against EC2's throttling (about 5 min)
bench-agent: bootstrap
	python bench/agent_takeover.py
	python bench/throttled_takeover.py --tables 1,5,50,200

## make bench-throttle: takeovers against EC2's request throttling, cloud only (no lab needed; about 12 min)
bench-throttle: bootstrap
	python bench/throttled_takeover.py $(THROTTLE_ARGS)

## make bench: the lab's failovers and fault matrix under a download, then the throttled cloud's tables
bench: bootstrap bench-faults
	python bench/failover.py $(BENCH_ARGS)
	python bench/throttled_takeover.py --tables 1,5,50,200

## make bench-faults: every fault of the matrix under a download (needs `make lab` first)
bench-faults: bootstrap
	python bench/fault_matrix.py $(FAULT_ARGS)

clean: lab-down
	rm -rf $(VENV) build/agent-wheel
