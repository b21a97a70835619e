"""The ``usage-pipeline`` program as a short-lived process: it exempts what lives until it
exits from later garbage collections (``gc.freeze``), and only in its own process."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from usage_pipeline.cli import main
from usage_pipeline.cli.process import (
    NO_FULL_COLLECTION,
    ShortLivedProcess,
    dagster_instance,
    freeze_survivors,
    program,
)

IN_PROGRAM = ShortLivedProcess((700, 10, 10))


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Start with no frozen object; give back to the collector what a test froze."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_the_console_script_is_the_short_lived_program() -> None:
    (script,) = entry_points(group="console_scripts", name="usage-pipeline")
    assert script.value == "usage_pipeline.cli.process:program"


@pytest.mark.parametrize(("obj", "frozen"), [(None, False), (IN_PROGRAM, True)])
def test_a_verb_freezes_before_exiting_in_the_program_only(
    unfrozen: None, obj: object, frozen: bool
) -> None:
    result = CliRunner().invoke(main, ["template", "user_activity"], obj=obj)
    assert result.exit_code == 0
    assert (gc.get_freeze_count() > 0) is frozen


@pytest.mark.parametrize(("obj", "frozen"), [(None, False), (IN_PROGRAM, True)])
def test_the_dagster_instance_is_frozen_once_open_in_the_program_only(
    unfrozen: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, obj: object, frozen: bool
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with click.Context(main, obj=obj), dagster_instance() as instance:
        assert instance.get_runs() == []
        assert (gc.get_freeze_count() > 0) is frozen


def test_the_program_defers_full_collections_until_it_freezes(
    unfrozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, ...]] = []

    @click.command()
    def probe() -> None:
        seen.append(gc.get_threshold())
        freeze_survivors()
        seen.append(gc.get_threshold())

    monkeypatch.setattr("usage_pipeline.cli.main", probe)
    monkeypatch.setattr(sys, "argv", ["usage-pipeline"])
    before = gc.get_threshold()
    try:
        with pytest.raises(SystemExit) as done:
            program()
    finally:
        gc.set_threshold(*before)
    assert done.value.code == 0
    assert seen == [(before[0], before[1], NO_FULL_COLLECTION), before]
    assert gc.get_freeze_count() > 0
