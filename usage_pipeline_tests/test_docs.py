"""The documentation is true of the code: tables and columns, config keys, README commands
and links, and the ``usage-pipeline`` verbs the docs mention."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from usage_pipeline.config import ConfigError, load_config
from usage_pipeline.warehouse.tables import metadata

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
README = REPO / "README.md"
DEMO_COMMAND = "./scripts/demo"
TEST_COMMAND = "./scripts/test"

# Every top-level key of the config file, with a valid example value (several keys when one
# needs another). Checked against the code through load_config, so a key missing here, or a
# key the code no longer accepts, fails the test.
CONFIG_EXAMPLES: dict[str, dict] = {
    "timezone": {"timezone": "UTC"},
    "inbox": {"inbox": "data/inbox"},
    "warehouse": {"warehouse": "sqlite:///data/warehouse.db"},
    "max_reject_ratio": {"max_reject_ratio": 0.05},
    "drops": {"drops": {"user_activity": {"deadline": "23:00", "grace": "2h"}}},
    "notifications": {"notifications": {"webhook_url": "https://example.com/hook"}},
    "drop_deadline": {"drop_deadline": "23:00"},
    "drop_grace": {"drop_grace": "2h"},
    "s3_endpoint_url": {"s3_endpoint_url": "http://127.0.0.1:9000"},
    "max_file_bytes": {"max_file_bytes": 1000},
    "chunk_rows": {"chunk_rows": 1000},
    "batch": {"batch": {"max_files": 10, "max_bytes": "1GiB"}},
    "products": {"products": {"P": {"snapshot_period": "monthly"}}},
    "imports": {
        "products": {"P": {"snapshot_period": "monthly"}},
        "imports": {
            "i": {
                "identifier": {"column": "c", "kind": "account_id"},
                "mappings": [{"column": "m", "product": "P", "dimension": "D", "type": "numeric"}],
            }
        },
    },
    "usage_events": {"usage_events": {"meters": ["api_calls"], "grace_hours": 8}},
    "events": {
        "events": {
            "throttle": {"Viewed": "30m"},
            "floor_date": "2009-01-01",
            "imports": {
                "billing": {
                    "identity": "user_id",
                    "timestamp": "created_at",
                    "event": {"column": "type", "names": {"signup": "Signed Up"}},
                    "properties": {"plan_id": "Plan"},
                    "also": [{"event": "Billed", "properties": {"amount": "Amount"}}],
                }
            },
        }
    },
}


def _sections(text: str) -> dict[str, str]:
    """``### `name` `` heading -> the text up to the next heading of level 2 or 3."""
    parts = re.split(r"^(#{2,3} .*)$", text, flags=re.M)
    sections = {}
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        match = re.fullmatch(r"### `([a-z_]+)`", heading.strip())
        if match:
            sections[match[1]] = body
    return sections


def test_every_table_and_column_is_documented() -> None:
    sections = _sections((DOCS / "tables.md").read_text(encoding="utf-8"))
    assert set(sections) == set(metadata.tables)
    for name, table in metadata.tables.items():
        missing = [c.name for c in table.columns if f"`{c.name}`" not in sections[name]]
        assert not missing, f"docs/tables.md, table {name}: columns {missing} not documented"


def test_tables_diagram_names_only_real_tables() -> None:
    text = (DOCS / "tables.md").read_text(encoding="utf-8")
    diagram = re.search(r"```mermaid\nflowchart LR\n(.*?)```", text, re.S)
    assert diagram
    nodes = set(re.findall(r"\b([a-z][a-z_]+)\b", re.sub(r"\[.*?\]", "", diagram[1])))
    assert nodes - {"files"} <= set(metadata.tables)


def _accepted(raw: dict, tmp_path: Path) -> bool:
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    try:
        load_config(path, environ={})
    except ConfigError:
        return False
    return True


def test_config_keys_are_the_codes_and_documented(tmp_path: Path) -> None:
    for key, raw in CONFIG_EXAMPLES.items():
        assert _accepted(raw, tmp_path), f"config key {key} is not accepted by load_config"
    assert not _accepted({"no_such_key": 1}, tmp_path)
    # When the unknown-key sentence lists the known keys, they are exactly these.
    path = tmp_path / "pipeline.yaml"
    path.write_text("no_such_key: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    listed = re.search(r"known keys: ([a-z0-9_, ]+)", str(error.value))
    if listed:
        assert set(listed[1].replace(" ", "").split(",")) == set(CONFIG_EXAMPLES)
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    table = text[text.index("## Top-level keys") :]
    missing = [key for key in CONFIG_EXAMPLES if f"| `{key}` |" not in table]
    assert not missing, f"docs/configuration.md lacks config keys {missing}"


def _markdown_files() -> list[Path]:
    return [README, REPO / "CHANGELOG.md", *sorted(DOCS.glob("*.md"))]


def test_readme_has_the_two_commands_and_links_resolve() -> None:
    readme = README.read_text(encoding="utf-8")
    assert DEMO_COMMAND in readme and TEST_COMMAND in readme
    assert (REPO / DEMO_COMMAND).is_file() and (REPO / TEST_COMMAND).is_file()
    assert "scripts/test" in (REPO / ".ci" / "run").read_text(encoding="utf-8")
    for page in _markdown_files():
        text = page.read_text(encoding="utf-8")
        assert "../shared" not in text, page
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            assert resolved.exists(), f"{page.name} links to {target}, which does not exist"
            assert REPO in resolved.parents, f"{page.name} links outside the repository"
            if anchor and resolved.suffix == ".md":
                assert anchor in _anchors(resolved), f"{page.name}: no heading for {target}"


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a markdown page."""
    headings = re.findall(r"^#+ (.*)$", page.read_text(encoding="utf-8"), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_pages_say_nothing_about_development() -> None:
    words = re.compile(r"next issue|the issue asks|issue \d|\bhelper\b|SPEC §", re.I)
    for page in _markdown_files():
        found = words.search(page.read_text(encoding="utf-8"))
        assert not found, f"{page.name}: {found[0]!r}"


def _cli_verbs() -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", "from usage_pipeline.cli import main; main()", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        cwd=REPO,
    )
    commands = result.stdout.split("Commands:", 1)[1]
    return set(re.findall(r"^\s{2}([a-z][a-z-]*)\s", commands, flags=re.M))


def test_documented_verbs_exist() -> None:
    verbs = _cli_verbs()
    assert {"run", "demo", "check", "status"} <= verbs
    for page in _markdown_files():
        text = page.read_text(encoding="utf-8")
        mentioned = set(re.findall(r"usage-pipeline (?!VERB\b)([a-z][a-z-]*)", text))
        assert mentioned <= verbs, f"{page.name} mentions unknown verbs {mentioned - verbs}"
