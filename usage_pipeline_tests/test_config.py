"""SPEC §4 configuration: one YAML file, environment overrides, unknown keys named."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pytest

from usage_pipeline.config import ConfigError, PipelineConfig, load_config


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "timezone: America/New_York\ninbox: s3://drops/nightly\nmax_reject_ratio: 0.1\n"
        "drop_deadline: '22:30'\ndrop_grace: 90m\nproducts: {}\n"
    )
    env = {
        "USAGE_PIPELINE_WAREHOUSE_URL": "postgresql+psycopg://u@h/db",
        "USAGE_PIPELINE_TIMEZONE": "Europe/Berlin",
    }

    config = load_config(path, environ=env, inbox="data/other")

    assert config == PipelineConfig(
        timezone="Europe/Berlin",
        inbox="data/other",
        warehouse="postgresql+psycopg://u@h/db",
        max_reject_ratio=0.1,
        drop_deadline=time(22, 30),
        drop_grace=timedelta(minutes=90),
    )


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(environ={}) == PipelineConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("inbx: data/inbox\n", "Unknown config key 'inbx'"),
        ("timezone: Mars/Olympus\n", "Config key 'timezone' must be an IANA time zone name"),
        ("max_reject_ratio: 2\n", "Config key 'max_reject_ratio' must be a number between 0 and 1"),
        ("drop_deadline: '25:00'\n", "Config key 'drop_deadline' must be a time of day"),
        ("drop_grace: soon\n", "Config key 'drop_grace' must be a duration like 30m or 2h"),
    ],
)
def test_invalid_keys_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path, environ={})


def test_the_committed_example_config_serves_the_demo() -> None:
    from usage_pipeline.config import parse_config
    from usage_pipeline.demo_data import kissmetrics, solvimon, statisfy

    example = load_config(Path(__file__).parent.parent / "data" / "pipeline.yaml", environ={})
    demo = parse_config(
        {**statisfy.CONFIG, "usage_events": solvimon.CONFIG, "events": kissmetrics.CONFIG}
    )

    assert (example.products, example.imports) == (demo.products, demo.imports)
    assert (example.usage_events, example.events) == (demo.usage_events, demo.events)
    assert (example.inbox, example.warehouse, example.timezone) == (
        "data/inbox",
        "sqlite:///data/warehouse.db",
        "UTC",
    )
