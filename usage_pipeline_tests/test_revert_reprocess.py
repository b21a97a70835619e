"""SPEC §6 revert and reprocess (issue 10, item 8): after ``revert`` every public table equals
never having loaded the file (every feed, rollups and snapshots included); after
``reprocess`` under a changed config (throttle, mapping, meters) they equal loading the file
fresh under that config. Both run as Dagster jobs (``revert_file_job``,
``reprocess_file_job``) and as CLI verbs."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from usage_pipeline.cli.status import OUTPUT_TABLES
from usage_pipeline.config import PipelineConfig, parse_config
from usage_pipeline.definitions import build_definitions
from usage_pipeline.defs.files.actions import REPROCESS_JOB, REVERT_JOB
from usage_pipeline.defs.tags import AS_OF_TAG
from usage_pipeline.revert import FileActionError, reprocess_key, revert_key
from usage_pipeline.runner import PipelineRunner, act_on_file
from usage_pipeline.sources import open_source
from usage_pipeline.warehouse.engine import get_engine, read_connection
from usage_pipeline.warehouse.tables import ingested_files, metadata
from usage_pipeline_tests.conftest import new_schema_url
from usage_pipeline_tests.helpers import AS_OF, drop, invoke, rows, run

# SPEC §3 tables but the ledger (ingested_files, rejected_rows)
PUBLIC = [t for t in OUTPUT_TABLES if t not in ("ingested_files", "rejected_rows")]
UA = "account_id,user_id,module,activity,count,timestamp"
UE = "customer_ref,subscription_ref,event_ref,timestamp,event,api_calls"
EV = "identity,event,timestamp,plan"
# (key, header, lines) of the files both warehouses load ...
KEPT = [
    ("accounts/accounts_2026-11-19.csv", "account_id,crm_id,domain,name", ["A1,CRM1,a1.com,Acme"]),
    ("user_activity/usage_2026-11-19.csv", UA, ["A1,u1,Reports,view,3,2026-11-19T10:00:00Z"]),
    ("account_usage/acct_2026-11-19.csv", "account_id,date,Reports##View,plan", ["A1,,5,Pro"]),
    ("account_attributes/attrs_2026-11-19.csv", "account_id,tier", ["A1,gold"]),
    ("events/ev_2026-11-19.csv", EV, ["alice,Viewed Dashboard,2026-11-19T10:00:00Z,Pro"]),
    ("product_usage/crm/pu_2026-11-19.csv", "customer_id,mau", ["CRM1,10"]),
    ("usage_events/ue_2026-11-19.csv", UE, ["c1,,e1,2026-11-19T10:00:00Z,api.call,3"]),
]
# ... and the later files of one warehouse, each reverted afterwards.
REVERTED = [
    (
        "accounts/accounts_2026-11-20.csv",
        "account_id,crm_id,domain,name",
        ["A1,CRM1,a1.com,Acme Corp"],
    ),
    (
        "user_activity/usage_2026-11-20.csv",
        UA,
        ["A1,u1,Reports,view,4,2026-11-19T11:00:00Z", "A1,u3,Admin,edit,2,2026-11-20T09:00:00Z"],
    ),
    (
        "account_usage/acct_2026-11-20.csv",
        "account_id,date,Reports##View,plan",
        ["A1,,7,Enterprise"],
    ),
    ("account_attributes/attrs_2026-11-20.csv", "account_id,tier", ["A1,platinum"]),
    (
        "events/ev_2026-11-20.csv",
        EV,
        [
            "alice,Viewed Dashboard,2026-11-19T10:10:00Z,Pro",  # throttled while 10:00 stays
            "alice,Viewed Dashboard,2026-11-19T10:40:00Z,Pro",
        ],
    ),
    ("product_usage/crm/pu_2026-11-20.csv", "customer_id,mau", ["CRM1,12"]),
    ("usage_events/ue_2026-11-20.csv", UE, ["c1,,e2,2026-11-20T10:00:00Z,api.call,5"]),
]


def _raw(inbox: Path, url: str, dimension: str = "MAU", throttle: str = "30m") -> dict:
    return {
        "inbox": str(inbox),
        "warehouse": url,
        "products": {"Platform": {"snapshot_period": "monthly"}},
        "imports": {
            "crm": {
                "identifier": {"column": "customer_id", "kind": "crm_id"},
                "mappings": [
                    {
                        "column": "mau",
                        "product": "Platform",
                        "dimension": dimension,
                        "type": "numeric",
                    }
                ],
            }
        },
        "usage_events": {"meters": ["api_calls"]},
        "events": {"throttle": {"Viewed Dashboard": throttle}},
    }


def _config(inbox: Path, url: str, **changes: str) -> PipelineConfig:
    return parse_config(_raw(inbox, url, **changes))


def _drop_all(inbox: Path, files: list[tuple[str, str, list[str]]]) -> None:
    for key, header, lines in files:
        drop(inbox, key, lines, header=header)


def refresh_billing_periods(config: PipelineConfig, instance: dg.DagsterInstance) -> None:
    job = build_definitions(config).resolve_job_def("billing_periods_job")
    assert job.execute_in_process(instance=instance, tags={AS_OF_TAG: AS_OF.isoformat()}).success


@pytest.fixture
def other_url(warehouse_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A second, empty warehouse on the same backend (the "never loaded" side)."""
    if warehouse_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'other.db'}"
    return new_schema_url(request.getfixturevalue("pg_database"))


def dump(url: str) -> dict[str, list[tuple]]:
    """Every public table, ``file_id`` replaced by the file's key (ids differ per warehouse)."""
    engine = get_engine(url)
    with read_connection(engine) as conn:
        query = sa.select(ingested_files.c.file_id, ingested_files.c.source_key)
        keys = {int(file_id): key for file_id, key in conn.execute(query).all()}
    tables: dict[str, list[tuple]] = {}
    for name in PUBLIC:
        columns = [c.name for c in metadata.tables[name].columns]
        found = rows(url, name)
        if "file_id" in columns:
            at = columns.index("file_id")
            found = sorted(tuple(keys[v] if i == at else v for i, v in enumerate(r)) for r in found)
        tables[name] = found
    return tables


def test_revert_equals_never_loading(tmp_path: Path, warehouse_url: str, other_url: str) -> None:
    loaded, fresh = tmp_path / "loaded", tmp_path / "fresh"
    config = _config(loaded, warehouse_url)
    _drop_all(loaded, KEPT)
    _drop_all(fresh, KEPT)
    with dg.DagsterInstance.ephemeral() as instance:
        run(config, instance)
        _drop_all(loaded, REVERTED)
        before = run(config, instance)
        engine = get_engine(warehouse_url)
        for key, _, _ in REVERTED[1:]:
            assert revert_key(engine, config, key, AS_OF).status == "reverted"
        report = act_on_file(config, instance, REVERT_JOB, "revert_file", REVERTED[0][0])
        run(_config(fresh, other_url), instance)

    assert [f["status"] for f in before.files] == ["loaded"] * 7
    assert [(f["file"], f["status"]) for f in report.files] == [(REVERTED[0][0], "reverted")]
    assert report.failed_runs == [] and report.snapshot_days == ["2026-11-20"]
    assert dump(warehouse_url) == dump(other_url)
    assert len(rows(warehouse_url, "events")) == 1  # 10:00 only; F2's 10:40 is gone
    statuses = rows(warehouse_url, "ingested_files", columns="source_key, status")
    assert statuses == sorted(
        [(key, "loaded") for key, _, _ in KEPT] + [(key, "reverted") for key, _, _ in REVERTED]
    )


def test_reprocess_equals_loading_fresh_under_the_new_config(
    tmp_path: Path, warehouse_url: str, other_url: str
) -> None:
    loaded, fresh = tmp_path / "loaded", tmp_path / "fresh"
    files = [KEPT[0], KEPT[4], REVERTED[4], KEPT[5], KEPT[6]]
    _drop_all(loaded, files)
    _drop_all(fresh, files)
    before = _config(loaded, warehouse_url)
    raw = _raw(loaded, warehouse_url, dimension="Monthly Active Users", throttle="5m")
    raw["usage_events"]["meters"] = ["api_calls", "storage_gb"]  # the old file lacks a column
    after = parse_config(raw)
    engine = get_engine(warehouse_url)
    with dg.DagsterInstance.ephemeral() as instance:
        run(before, instance)
        kept_before = len(rows(warehouse_url, "events"))
        outcome = reprocess_key(engine, open_source(str(loaded)), after, KEPT[5][0], AS_OF)
        report = act_on_file(after, instance, REPROCESS_JOB, "reprocess_file", REVERTED[4][0])
        for key in (KEPT[4][0], KEPT[6][0]):
            reprocess_key(engine, open_source(str(loaded)), after, key, AS_OF)
        PipelineRunner(after, instance).follow_up()
        raw.update(inbox=str(fresh), warehouse=other_url)
        run(parse_config(raw), instance)
        for config in (after, parse_config(raw)):  # period states move on with the clock
            refresh_billing_periods(config, instance)

    assert kept_before == 2  # 10:00 and 10:40; 10:10 throttled by 30m
    assert outcome.status == "loaded" and outcome.superseded == []
    assert [(f["file"], f["status"]) for f in report.files] == [(REVERTED[4][0], "loaded")]
    assert dump(warehouse_url) == dump(other_url)
    assert len(rows(warehouse_url, "events")) == 3  # 5m keeps all three
    assert rows(warehouse_url, "product_usage", columns="dimension, value_numeric") == [
        ("Monthly Active Users", 10.0)
    ]
    assert rows(warehouse_url, "usage_events") == []
    assert rows(warehouse_url, "ingested_files", columns="source_key, status, error")[-1] == (
        "usage_events/ue_2026-11-19.csv",
        "rejected",
        "File usage_events/ue_2026-11-19.csv is rejected: required column storage_gb missing.",
    )


def test_final_billing_periods_refuse_revert_and_reprocess(
    tmp_path: Path, warehouse_url: str
) -> None:
    inbox = tmp_path / "inbox"
    config = _config(inbox, warehouse_url)
    _drop_all(inbox, [KEPT[6]])
    december = datetime(2026, 12, 2, tzinfo=timezone.utc)  # November is final
    with dg.DagsterInstance.ephemeral() as instance:
        run(config, instance)
        tables = dump(warehouse_url)
        engine = get_engine(warehouse_url)
        with pytest.raises(FileActionError) as reverting:
            revert_key(engine, config, KEPT[6][0], december)
        with pytest.raises(FileActionError) as reprocessing:
            reprocess_key(engine, open_source(str(inbox)), config, KEPT[6][0], december)

    reason = (
        "its usage events in billing period 2026-11 are final, and a final period never changes."
    )
    assert str(reverting.value) == f"File {KEPT[6][0]} cannot be reverted: {reason}"
    assert str(reprocessing.value) == f"File {KEPT[6][0]} cannot be reprocessed: {reason}"
    assert dump(warehouse_url) == tables
    assert rows(warehouse_url, "ingested_files", columns="status") == [("loaded",)]


def test_revert_and_reprocess_verbs(project: Path, warehouse_url: str) -> None:
    inbox = project / "data" / "inbox"
    (project / "data" / "pipeline.yaml").write_text(yaml.safe_dump(_raw(inbox, warehouse_url)))
    key = REVERTED[1][0]
    _drop_all(inbox, [REVERTED[1]])
    drop(inbox, "user_activity/bad.csv", ["A1,u1,Reports,view,-1,2026-11-20T09:00:00Z"], header=UA)
    invoke("run", "--as-of", "2026-11-21T12:00:00+00:00")

    reverted = invoke("revert", key)
    after_revert = rows(warehouse_url, "user_activity_daily")
    again = invoke("revert", key)
    reprocessed = invoke("reprocess", key)
    never = invoke("reprocess", "user_activity/nope.csv")
    rejected = invoke("revert", "user_activity/bad.csv")

    assert (reverted.exit_code, reverted.output.splitlines()) == (
        0,
        [
            f"  reverted   {key}  rows 0/2 loaded",
            "  rolled up: 2026-11-19..2026-11-20",
            "  snapshots: 2026-11-20",
        ],
    )
    assert after_revert == []
    assert (again.exit_code, again.output) == (
        2,
        f"error: File {key} has no loaded version to revert (its latest version is reverted).\n",
    )
    assert (reprocessed.exit_code, reprocessed.output.splitlines()) == (
        0,
        [
            f"  loaded     {key}  rows 2/2 loaded",
            "  rolled up: 2026-11-19..2026-11-20",
            "  snapshots: 2026-11-20",
        ],
    )
    assert rows(warehouse_url, "user_activity_daily") == [
        ("2026-11-19", "A1", "u1", "Reports", "view", 4),
        ("2026-11-20", "A1", "u3", "Admin", "edit", 2),
    ]
    assert (never.exit_code, never.output) == (
        2,
        "error: File user_activity/nope.csv has never been sensed; 'usage-pipeline run' loads"
        " it.\n",
    )
    assert rejected.exit_code == 2
    assert "its latest version is rejected" in rejected.output
