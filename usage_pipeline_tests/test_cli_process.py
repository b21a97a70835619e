"""The ``usage-pipeline`` program as a short-lived process: it exempts what lives until it
exits from later garbage collections (``gc.freeze``), and only in its own process."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from usage_pipeline.cli import main
from usage_pipeline.cli.process import ShortLivedProcess, dagster_instance


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Start with no frozen object; give back to the collector what a test froze."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_the_console_script_is_the_short_lived_program() -> None:
    (script,) = entry_points(group="console_scripts", name="usage-pipeline")
    assert script.value == "usage_pipeline.cli.process:program"


@pytest.mark.parametrize(("obj", "frozen"), [(None, False), (ShortLivedProcess(), True)])
def test_a_verb_freezes_before_exiting_in_the_program_only(
    unfrozen: None, obj: object, frozen: bool
) -> None:
    result = CliRunner().invoke(main, ["template", "user_activity"], obj=obj)
    assert result.exit_code == 0
    assert (gc.get_freeze_count() > 0) is frozen


@pytest.mark.parametrize(("obj", "frozen"), [(None, False), (ShortLivedProcess(), True)])
def test_the_dagster_instance_is_frozen_once_open_in_the_program_only(
    unfrozen: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, obj: object, frozen: bool
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with click.Context(main, obj=obj), dagster_instance() as instance:
        assert instance.get_runs() == []
        assert (gc.get_freeze_count() > 0) is frozen
