# linuxnet.tunnels: thin wrappers around scripts/ (each script says more with --help).
#
#   make lab        set up, build the IPIP lab and ping through the tunnel
#   make test       set up and run the whole test suite (STEPS="sanity lint" for some)
#   make shell      a root shell in a User-Mode Linux kernel with the lab up
#   make teardown   remove a lab that `make lab` built on this machine's kernel
#   make setup      install the Debian packages and the virtualenv
#   make sanity     ansible-test sanity
#   make lint       ansible-lint and antsibull-changelog lint
#   make molecule   every molecule scenario
#   make bench      benchmarks as ratios to a one-task playbook (bench-results/)
#   make clean      remove build and test output (not the virtualenvs)

SHELL := /bin/bash
STEPS ?=
ARGS ?=

.PHONY: help lab test shell teardown setup sanity lint unit integration build molecule oldest bench clean

help:
	@sed -n '3,13p' Makefile | sed 's/^# \{0,1\}//'

lab:
	scripts/lab up $(ARGS)

test:
	scripts/test $(STEPS)

shell:
	scripts/lab shell $(ARGS)

teardown:
	scripts/lab down $(ARGS)

setup:
	scripts/setup

sanity unit integration build oldest:
	scripts/test $@

lint:
	scripts/test lint

molecule:
	scripts/test molecule

bench:
	scripts/bench $(ARGS)

clean:
	rm -rf .build tests/output/linuxnet
