"""SPEC §4 configuration: one YAML file, environment overrides, unknown keys named."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pytest

from usage_pipeline.config import ConfigError, DropWatch, PipelineConfig, load_config


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
        drops=(DropWatch("user_activity", time(22, 30), timedelta(minutes=90)),),
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
        ("drops: {user_actvity: {}}\n", "Config key 'drops.user_actvity' names no feed"),
        ("drops: {events: {days: sundays}}\n", "Config key 'drops.events.days' must be one of"),
        ("drops: {events: {due: '06:00'}}\n", "Unknown config key 'drops.events.due'"),
        (
            "drops: {events: {volume_band: [200%, 50%]}}\n",
            "Config key 'drops.events.volume_band' must list the lower share first",
        ),
        (
            "drop_deadline: '22:00'\ndrops: {user_activity: {grace: 1h}}\n",
            "Config keys 'drop_deadline'/'drop_grace' and 'drops.user_activity' both set",
        ),
        (
            "notifications: {webhook_url: hooks.slack.com/x}\n",
            "Config key 'notifications.webhook_url' must be an http:// or https:// URL",
        ),
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


def test_drops_and_notifications(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "drops:\n"
        "  usage_events: {deadline: '06:00', grace: 1h, days: weekdays}\n"
        "  events: {volume_band: [40%, 3]}\n"
        "notifications: {webhook_url: 'https://hooks.example.com/T1'}\n"
    )

    config = load_config(path, environ={"USAGE_PIPELINE_WEBHOOK_URL": "http://127.0.0.1:9/h"})

    assert config.drops == (
        DropWatch("events", volume_band=(0.4, 3.0)),
        DropWatch("usage_events", time(6, 0), timedelta(hours=1), "weekdays"),
    )
    assert config.drop_watch("user_activity") is None  # listing feeds replaces the default
    assert config.webhook_url == "http://127.0.0.1:9/h"  # the environment wins
    assert PipelineConfig.from_json(config.to_json()) == config


def test_default_and_legacy_drop_watch() -> None:
    from usage_pipeline.config import parse_config

    assert parse_config({}).drops == (DropWatch("user_activity", time(23, 0), timedelta(hours=2)),)
    assert parse_config({"drops": {}}).drops == ()  # nothing watched
    legacy = parse_config({"drop_grace": "30m", "drops": {"accounts": {"days": "weekdays"}}})
    assert legacy.drops == (
        DropWatch("accounts", days="weekdays"),
        DropWatch("user_activity", grace=timedelta(minutes=30)),
    )
