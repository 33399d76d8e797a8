"""For `make mutants` only: credit what module-scoped fixtures run to every test of the module.

mutmut runs, for each mutant, only the tests that reached the mutated function while it
collected its statistics, and it credits a call to the test running at that moment. A
module-scoped fixture (a session aligned or labelled once for a whole test module) runs
during the module's first test, so the module's other tests, the ones that check those
labels, would never be run against the mutants and mutants they kill would survive. This
plugin, active only during mutmut's statistics run, credits each test with every function
its module's tests have reached so far.
"""

from __future__ import annotations

import os
from collections import defaultdict

import pytest


class ModuleFixtureCredit:
    """Widen mutmut's per-test record of reached functions to the test's whole module."""

    def __init__(self) -> None:
        self.reached: defaultdict[str, set[str]] = defaultdict(set)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        from mutmut.state import state

        module = item.nodeid.split("::", 1)[0]
        self.reached[module] |= state()._stats
        state()._stats |= self.reached[module]


def register(config: pytest.Config) -> None:
    """Register the plugin when mutmut is collecting its statistics."""
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        config.pluginmanager.register(ModuleFixtureCredit(), "stpe-mutmut-module-credit")
