"""Issue 11 item 5: one Dagster instance per inbox. Every run is tagged with the inbox it
serves; ``usage-pipeline run`` refuses (exit 2, one sentence) an instance holding runs of
another inbox, and the inbox sensor skips its ticks with the same sentence."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from usage_pipeline.cli import main
from usage_pipeline.config import PipelineConfig
from usage_pipeline.definitions import build_definitions
from usage_pipeline.defs.resources import PipelineResource
from usage_pipeline.defs.tags import INBOX_TAG
from usage_pipeline.instance import InstanceError, inbox_identity, open_instance
from usage_pipeline_tests.helpers import AS_OF, drop, run

GOOD = ["A1,u1,Reports,view,3,2026-11-20T10:00:00Z"]


def test_inbox_identity_is_an_absolute_folder_or_an_s3_uri(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    assert inbox_identity("data/inbox") == str(tmp_path / "data" / "inbox")
    assert inbox_identity("s3://drops/nightly/") == "s3://drops/nightly"
    assert inbox_identity("s3://drops/nightly") == "s3://drops/nightly"


def test_every_run_is_tagged_and_another_inbox_is_refused(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    drop(first, "user_activity/usage_2026-11-20.csv", GOOD)
    second.mkdir()
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    with open_instance() as instance:  # the CLI's instance: DAGSTER_HOME
        report = run(PipelineConfig(inbox=str(first), warehouse=sqlite_url), instance)
        assert report.exit_code == 0
        assert instance.get_run_tags(tag_keys=[INBOX_TAG]) == [(INBOX_TAG, {str(first)})]
        runs = instance.get_run_records()
        assert runs and all(r.dagster_run.tags[INBOX_TAG] == str(first) for r in runs)

        with pytest.raises(InstanceError) as refused:
            run(PipelineConfig(inbox=str(second), warehouse=sqlite_url), instance)
        assert str(refused.value) == (
            f"This Dagster instance already holds runs of the inbox {first}, not {second}:"
            " use one DAGSTER_HOME per inbox."
        )
        assert len(instance.get_run_records()) == len(runs)  # nothing ran

        again = run(PipelineConfig(inbox=str(first), warehouse=sqlite_url), instance)
        assert again.exit_code == 0  # the same inbox keeps running


def test_an_instance_the_caller_made_is_its_own_to_share(tmp_path: Path, sqlite_url: str) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    drop(first, "user_activity/usage_2026-11-20.csv", GOOD)
    drop(second, "user_activity/usage_2026-11-20.csv", GOOD)
    with dg.DagsterInstance.ephemeral() as instance:
        run(PipelineConfig(inbox=str(first), warehouse=sqlite_url), instance)
        report = run(PipelineConfig(inbox=str(second), warehouse=sqlite_url), instance)

        assert report.exit_code == 0
        assert instance.get_run_tags(tag_keys=[INBOX_TAG]) == [
            (INBOX_TAG, {str(first), str(second)})
        ]


def test_the_inbox_sensor_skips_on_an_instance_of_another_inbox(
    tmp_path: Path, sqlite_url: str
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    drop(first, "user_activity/usage_2026-11-20.csv", GOOD)
    drop(second, "user_activity/usage_2026-11-20.csv", GOOD)
    with dg.DagsterInstance.ephemeral() as instance:
        run(PipelineConfig(inbox=str(first), warehouse=sqlite_url), instance)
        config = PipelineConfig(inbox=str(second), warehouse=sqlite_url)
        definitions = build_definitions(config)
        context = dg.build_sensor_context(
            instance=instance,
            definitions=definitions,
            resources={"pipeline": PipelineResource.from_config(config)},
        )
        data = definitions.resolve_sensor_def("inbox_sensor").evaluate_tick(context)

        assert data.run_requests == []
        assert data.skip_message == (
            f"This Dagster instance already holds runs of the inbox {first}, not {second}:"
            " use one DAGSTER_HOME per inbox."
        )


def test_cli_run_on_a_shared_dagster_home_exits_2(project: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    home = project / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    drop(project / "data" / "inbox", "user_activity/usage_2026-11-20.csv", GOOD)
    (project / "other").mkdir()
    as_of = AS_OF.isoformat()

    first = CliRunner().invoke(main, ["run", "--as-of", as_of], catch_exceptions=False)
    second = CliRunner().invoke(
        main, ["run", "--inbox", "other", "--as-of", as_of], catch_exceptions=False
    )

    assert first.exit_code == 0, first.output
    assert (second.exit_code, second.stdout) == (2, "")
    assert second.stderr == (
        f"error: This Dagster instance already holds runs of the inbox"
        f" {project / 'data' / 'inbox'}, not {project / 'other'}: use one DAGSTER_HOME per"
        " inbox.\n"
    )
