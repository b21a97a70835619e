"""``product_usage/<import>/``: Statisfy product-usage imports (SPEC §2.5).

Each folder under ``product_usage/`` is an import configured under ``imports``: which column
identifies the account (and how it is matched, see :mod:`usage_pipeline.matching`), an
optional date column, and mappings CSV column -> product -> dimension -> type. Every cell of
a loaded file is kept in ``product_usage_observations`` (one row per file, row and mapped
cell); :meth:`ProductUsageFeed.apply` then recomputes ``product_usage`` for exactly the
(product, account, dimension, period_start) keys the file (and the versions it supersedes)
touched: the latest observation wins, or, for products with
``allow_multiple_rows_per_customer``, every observation is kept and numbered ``seq``.

Decisions where the spec is silent (README "Product usage"):

- every column the import names (identifier, date column, mapped columns) is required;
  any other column is an error;
- a blank identifier, or a date cell that is not a date, makes the row invalid (nothing of
  it is loaded); a bad value cell rejects that cell only, but the row still counts as
  invalid for ``max_reject_ratio`` and in ``rows_rejected``;
- a blank date cell takes the date a file without a date column would get (as-of rule);
- "latest" means the most recently ingested file version, then the last row of the file;
- an identifier of kind ``account_id`` is the account id as it is (no directory needed);
- a ``crm_id``/``domain``/``name`` identifier matching no account (or several: ambiguous)
  is not loaded, is listed in the report and in ``rejected_rows`` (column = the identifier
  column), and fails the ``unmatched_accounts`` check; it does not count towards
  ``max_reject_ratio``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from usage_pipeline.config import ConfigError, ImportConfig, PipelineConfig
from usage_pipeline.days import FIRST_DAY
from usage_pipeline.feeds.base import (
    ERROR_COLUMNS,
    ChunkResult,
    Feed,
    FeedChange,
    FeedCheck,
    FileContext,
    validate,
)
from usage_pipeline.matching import AccountDirectory, AccountIds, load_directory
from usage_pipeline.periods import auto_period_start, period_starts
from usage_pipeline.timestamps import TIMESTAMP_KIND, parse_days
from usage_pipeline.warehouse.tables import (
    product_dimensions,
    product_usage,
    product_usage_observations,
)

if TYPE_CHECKING:
    import pandera.pandas as pa

UNMATCHED_CHECK = "unmatched_accounts"
UNMATCHED_LISTED = 20  # identifiers named in notes and check metadata
REPORT_ROWS = 50  # report lines per chunk (unmatched rows first)
KEY = ("product", "account_id", "dimension", "period_start")
VALUE_COLUMNS = {"numeric": "value_numeric", "text": "value_text", "boolean": "value_boolean"}
TRUE_WORDS = frozenset({"true", "yes", "1"})
FALSE_WORDS = frozenset({"false", "no", "0"})
OBSERVATION_COLUMNS = [c.name for c in product_usage_observations.columns if c.name != "file_id"]


def numbers(text: pd.Series) -> pd.Series:
    """Finite numbers of text cells (NaN when blank or not a number)."""
    values = pd.to_numeric(text.astype("string").str.strip(), errors="coerce").astype("float64")
    return values.where(np.isfinite(values))


def booleans(text: pd.Series) -> pd.Series:
    """true/false, yes/no, 1/0 in any case -> True/False (None when blank or not one of them)."""
    words = text.astype("string").str.strip().str.lower()
    result = pd.Series(None, index=text.index, dtype=object)
    result[words.isin(TRUE_WORDS).fillna(False).to_numpy(dtype=bool)] = True
    result[words.isin(FALSE_WORDS).fillna(False).to_numpy(dtype=bool)] = False
    return result


def texts(text: pd.Series) -> pd.Series:
    """Text cells with surrounding blanks trimmed (None when blank)."""
    values = text.astype("string").str.strip()
    return values.where(values.notna() & (values != ""), None).astype(object)


PARSERS = {"numeric": numbers, "boolean": booleans, "text": texts}


def _type_check(kind: str) -> pa.Check | None:
    """The pandera check a cell of a ``numeric`` or ``boolean`` mapping must pass."""
    import pandera.pandas as pa

    if kind == "numeric":
        return pa.Check(lambda s: numbers(s).notna(), error="is not a number")
    if kind == "boolean":
        return pa.Check(
            lambda s: booleans(s).notna(), error="is not a boolean (true/false, yes/no, 1/0)"
        )
    return None


def _lower(name: str) -> str:
    return name.strip().lower()


def _import_columns(imp: ImportConfig) -> list[str]:
    """The import's columns as they appear in a normalised header, without repeats."""
    names = [_lower(imp.identifier_column), *(_lower(m.column) for m in imp.mappings)]
    if imp.date_column:
        names.append(_lower(imp.date_column))
    return list(dict.fromkeys(names))


@lru_cache(maxsize=64)
def product_usage_schema(
    imp: ImportConfig, first_day: pd.Timestamp, last_day: pd.Timestamp
) -> pa.DataFrameSchema:
    """The pandera contract of one import's chunk: identifier present, date valid, each
    mapped cell blank or of its dimension's type."""
    import pandera.pandas as pa

    identifier = _lower(imp.identifier_column)
    date_column = _lower(imp.date_column) if imp.date_column else None
    kinds: dict[str, list[str]] = {name: [] for name in _import_columns(imp)}
    for mapping in imp.mappings:
        column = _lower(mapping.column)
        if column != date_column and mapping.type not in kinds[column]:
            kinds[column].append(mapping.type)
    checks = {
        name: [c for c in map(_type_check, found) if c is not None] for name, found in kinds.items()
    }
    columns = {
        name: pa.Column(nullable=name != identifier, checks=found) for name, found in checks.items()
    }
    if date_column:
        day_range = pa.Check(
            lambda s: (s >= first_day) & (s <= last_day),
            error=f"is outside the accepted days {first_day.date()} to {last_day.date()}",
        )
        columns[date_column] = pa.Column("datetime64[ns]", nullable=False, checks=[day_range])
    return pa.DataFrameSchema(columns, strict=True, name=f"product_usage/{imp.name}")


@dataclass
class UnmatchedTally:
    """Unmatched rows seen while reading one file (for notes and the check)."""

    rows: int = 0
    identifiers: list[str] = field(default_factory=list)

    def add(self, values: list[str]) -> None:
        self.rows += len(values)
        for value in values:
            if len(self.identifiers) >= UNMATCHED_LISTED:
                break
            if value not in self.identifiers:
                self.identifiers.append(value)


@dataclass(frozen=True)
class PreparedImport:
    """What :meth:`ProductUsageFeed.prepare` loads for one file (``FileContext.lookup``)."""

    imp: ImportConfig
    directory: AccountDirectory | AccountIds
    periods: dict[str, str]  # product -> snapshot period
    auto_starts: dict[str, str]  # product -> period_start of a row without a date
    warehouse: bool  # False: dry run without a warehouse (nothing can match)
    unmatched: UnmatchedTally = field(default_factory=UnmatchedTally)


def _merge_errors(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=ERROR_COLUMNS)
    merged = pd.concat(frames, ignore_index=True)
    return (
        merged.groupby(["row_number", "column_name"], as_index=False, sort=True)
        .agg(value=("value", "first"), error=("error", "; ".join))
        .loc[:, ERROR_COLUMNS]
    )


def _lock_key(product: str) -> int:
    digest = hashlib.blake2b(f"product_usage:{product}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class ProductUsageFeed(Feed):
    """Statisfy product-usage imports: one value per (product, account, dimension, period),
    or every value as history."""

    name = "product_usage"
    target = product_usage_observations
    day_column = None  # periods, not daily rollups
    check_names = (UNMATCHED_CHECK,)

    # --- the file contract -------------------------------------------------------------

    def columns(
        self, config: PipelineConfig, import_name: str | None
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        imp = config.import_config(import_name) if import_name else None
        return (tuple(_import_columns(imp)) if imp else ()), ()

    def template(self, config: PipelineConfig, import_name: str | None = None) -> str:
        imp = config.import_config(import_name) if import_name else None
        if imp is None:
            raise ConfigError(
                f"The product_usage template depends on the import: pass --import NAME"
                f" ({_configured(config)})."
            )
        return super().template(config, import_name)

    def file_problem(self, context: FileContext) -> str | None:
        config = context.config
        if context.import_name is None:
            return (
                "it is directly in product_usage/, not in an import folder"
                f" product_usage/<import>/ ({_configured(config)})"
            )
        imp = config.import_config(context.import_name)
        if imp is None:
            return (
                f"folder {context.import_name!r} under product_usage/ is not a configured"
                f" import ({_configured(config)})"
            )
        seen: dict[tuple[str, str], str] = {}
        for mapping in imp.mappings:
            target = (mapping.product, mapping.dimension)
            if target in seen and seen[target] != _lower(mapping.column):
                return (
                    f"import {imp.name!r} maps both column {seen[target]!r} and column"
                    f" {_lower(mapping.column)!r} to dimension {mapping.dimension!r} of product"
                    f" {mapping.product!r}; map each dimension from one column"
                )
            seen[target] = _lower(mapping.column)
        return None

    def prepare(self, conn: sa.Connection | None, context: FileContext) -> FileContext:
        imp = context.config.import_config(context.import_name or "")
        if imp is None:  # file_problem refused it already; keep the dry run honest
            raise ValueError(self.file_problem(context) or "no import configured")
        if conn is not None:
            _check_dimension_types(conn, imp)
        as_of_day = context.now.astimezone(context.tz).date()
        periods = {
            m.product: context.config.product(m.product).snapshot_period for m in imp.mappings
        }
        prepared = PreparedImport(
            imp=imp,
            directory=load_directory(conn, imp.identifier_kind),
            periods=periods,
            auto_starts={
                p: auto_period_start(as_of_day, s).isoformat() for p, s in periods.items()
            },
            warehouse=conn is not None,
        )
        return dataclasses.replace(context, lookup=prepared)

    # --- rows --------------------------------------------------------------------------

    def process_chunk(self, raw: pd.DataFrame, context: FileContext) -> ChunkResult:
        prepared: PreparedImport = context.lookup
        imp = prepared.imp
        identifier = _lower(imp.identifier_column)
        date_column = _lower(imp.date_column) if imp.date_column else None
        parsed = raw.loc[:, _import_columns(imp)].copy()
        dates = None
        if date_column:
            as_of = pd.Timestamp(context.now.astimezone(context.tz).date())
            dates = parse_days(raw[date_column], context.tz)
            parsed[date_column] = dates.where(raw[date_column].notna(), as_of)
            dates = dates.where(raw[date_column].notna())  # NaT: use the as-of rule
        last = max(
            context.now.astimezone(context.tz).date(),
            context.received_at.astimezone(context.tz).date(),
        )
        schema = product_usage_schema(
            imp, pd.Timestamp(FIRST_DAY), pd.Timestamp(last + timedelta(days=1))
        )
        kinds = {identifier: f"a {imp.identifier_kind}"}
        if date_column:
            kinds[date_column] = f"a YYYY-MM-DD date or {TIMESTAMP_KIND}"
        _valid, errors, failures = validate(parsed, raw, schema, kinds)

        # rows that can be placed: identifier present and a valid date (or none needed)
        row_columns = {identifier, date_column} - {None}
        unusable = set(errors.loc[errors["column_name"].isin(row_columns), "row_number"])
        usable = ~raw.index.isin(list(unusable)) & raw[identifier].notna().to_numpy()
        account, reason = prepared.directory.match_series(raw[identifier].where(usable))
        matched = usable & account.notna().to_numpy()
        unmatched = usable & ~matched

        unmatched_errors = pd.DataFrame(
            {
                "row_number": raw.index[unmatched].astype("int64"),
                "column_name": identifier,
                "value": raw[identifier][unmatched].astype(str).to_numpy(),
                "error": [f"{r}; the row is not loaded" for r in reason[unmatched]],
            },
            columns=ERROR_COLUMNS,
        )
        invalid = int(errors["row_number"].nunique()) if len(errors) else 0
        errors = _merge_errors([errors, unmatched_errors])
        if unmatched.any():
            failures[f"{identifier}: unmatched account"] += int(unmatched.sum())
            prepared.unmatched.add([str(v) for v in raw[identifier][unmatched]])

        starts = self._period_starts(prepared, dates, raw.index)
        observations = []
        for mapping in imp.mappings:
            column = _lower(mapping.column)
            values = PARSERS[mapping.type](raw[column])
            keep = matched & values.notna().to_numpy()
            if not keep.any():
                continue
            frame = pd.DataFrame(
                {
                    "row_number": raw.index[keep].astype("int64"),
                    "product": mapping.product,
                    "account_id": account[keep].to_numpy(),
                    "dimension": mapping.dimension,
                    "period_start": starts[mapping.product][keep],
                    "period": prepared.periods[mapping.product],
                    "value_numeric": np.nan,
                    "value_text": None,
                    "value_boolean": None,
                }
            )
            frame[VALUE_COLUMNS[mapping.type]] = values[keep].to_numpy()
            observations.append(frame)
        rows = (
            pd.concat(observations, ignore_index=True)
            if observations
            else pd.DataFrame(columns=OBSERVATION_COLUMNS)
        )
        rows["value_boolean"] = rows["value_boolean"].astype(object)
        rows["value_text"] = rows["value_text"].astype(object)
        clean = matched & ~raw.index.isin(errors["row_number"].to_list())
        report = self._report(raw, prepared, account, reason, starts, errors, usable, matched)
        return ChunkResult(
            rows=rows.loc[:, OBSERVATION_COLUMNS],
            errors=errors,
            failures=failures,
            loaded=int(clean.sum()),
            invalid=invalid,
            report=report,
        )

    def _period_starts(
        self, prepared: PreparedImport, dates: pd.Series | None, index: pd.Index
    ) -> dict[str, np.ndarray]:
        """product -> each row's period_start (ISO) in this chunk."""
        by_period: dict[str, np.ndarray] = {}
        starts = {}
        for product, period in prepared.periods.items():
            auto = prepared.auto_starts[product]
            result = np.full(len(index), auto, dtype=object)
            if dates is not None:
                key = period
                if key not in by_period:
                    present = dates.notna().to_numpy()
                    snapped = np.full(len(index), None, dtype=object)
                    if present.any():
                        snapped[present] = period_starts(dates[present], period)
                    by_period[key] = snapped
                snapped = by_period[key]
                result = np.where(pd.notna(snapped), snapped, result)
            starts[product] = result
        return starts

    def _report(
        self,
        raw: pd.DataFrame,
        prepared: PreparedImport,
        account: pd.Series,
        reason: pd.Series,
        starts: dict[str, np.ndarray],
        errors: pd.DataFrame,
        usable: np.ndarray,
        matched: np.ndarray,
    ) -> list[str]:
        """Statisfy-style test results: per row, the account matched (or why not) and the
        period the row lands in per product; unmatched rows first when there are many."""
        imp = prepared.imp
        identifier = _lower(imp.identifier_column)
        lines = []
        if raw.index[0] == 2:  # the first chunk of the file
            if isinstance(prepared.directory, AccountIds):
                lines.append(
                    f"column {identifier} holds the account id itself (kind account_id: no"
                    " accounts directory needed)"
                )
            elif prepared.warehouse:
                lines.append(
                    f"accounts directory: {_accounts(prepared.directory.size)}; column"
                    f" {identifier} is matched by {imp.identifier_kind}"
                )
            else:
                lines.append(
                    "accounts directory: no warehouse found, so no account can match"
                    f" (column {identifier} is matched by {imp.identifier_kind})"
                )
        positions = np.arange(len(raw))
        first = list(positions[usable & ~matched]) + list(positions[~usable])
        chosen = sorted((first + list(positions[matched]))[:REPORT_ROWS])
        cell_errors = errors.groupby("row_number")["error"].count().to_dict() if len(errors) else {}
        row_errors = errors.groupby("row_number")["error"].first().to_dict() if len(errors) else {}
        products = list(prepared.periods)
        for position in chosen:
            row = int(raw.index[position])
            value = raw[identifier].iat[position]
            lands = ", ".join(
                f"{p} ({prepared.periods[p]}) {starts[p][position]}" for p in products
            )
            if matched[position]:
                bad = cell_errors.get(row, 0)
                suffix = f"; {bad} cell{'s' if bad > 1 else ''} rejected" if bad else ""
                lines.append(
                    f"row {row}: {identifier} {value!r} matched account"
                    f" {account.iat[position]} -> {lands}{suffix}"
                )
            elif usable[position]:
                lines.append(
                    f"row {row}: {identifier} {value!r} UNMATCHED ({reason.iat[position]}),"
                    f" not loaded; it would land in {lands}"
                )
            else:
                lines.append(f"row {row}: invalid ({row_errors.get(row)}), not loaded")
        return lines

    # --- tables ------------------------------------------------------------------------

    def apply(
        self, conn: sa.Connection, context: FileContext, file_id: int, removed: list[int]
    ) -> FeedChange:
        o = product_usage_observations
        ids = [file_id, *removed]
        products = sorted(
            conn.execute(sa.select(o.c.product).where(o.c.file_id.in_(ids)).distinct()).scalars()
        )
        if conn.dialect.name == "postgresql":  # files of one product recompute one at a time
            for product in products:
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(product))))
        touched = o.alias("touched")
        touched_keys = (
            sa.select(*(touched.c[k] for k in KEY)).where(touched.c.file_id.in_(ids)).distinct()
        )
        conn.execute(
            product_usage.delete().where(
                sa.tuple_(*(product_usage.c[k] for k in KEY)).in_(touched_keys)
            )
        )
        history = [p.name for p in context.config.products if p.allow_multiple_rows_per_customer]
        for keep_history in (False, True):
            conn.execute(_recompute(touched_keys, removed, history, keep_history))
        if removed:
            conn.execute(o.delete().where(o.c.file_id.in_(removed)))
        _create_dimensions(conn, context.lookup.imp, file_id)
        return FeedChange(tables={"product_usage"}, notes=_notes(conn, context.lookup, file_id))

    def checks(self, outcome: Any) -> list[FeedCheck]:
        if outcome.status != "loaded":
            return [
                FeedCheck(
                    UNMATCHED_CHECK,
                    passed=True,
                    description=f"Not evaluated: the file was {outcome.status}.",
                )
            ]
        unmatched = int(outcome.notes.get("unmatched_rows", 0))
        total = outcome.rows_total
        ratio = unmatched / total if total else 0.0
        names = outcome.notes.get("unmatched_identifiers", [])
        metadata = {
            "unmatched_rows": unmatched,
            "rows_total": total,
            "unmatched_ratio": round(ratio, 6),
            "unmatched_identifiers": ", ".join(names),
        }
        if not unmatched:
            return [
                FeedCheck(
                    UNMATCHED_CHECK,
                    True,
                    f"Every row of {outcome.source_key} matched an account.",
                    metadata,
                )
            ]
        more = " …" if unmatched > len(names) else ""
        return [
            FeedCheck(
                UNMATCHED_CHECK,
                passed=False,
                description=(
                    f"{unmatched} of {total} rows of {outcome.source_key} ({ratio:.1%}) match no"
                    f" account and were not loaded: {', '.join(names)}{more}."
                ),
                metadata=metadata,
            )
        ]


def _accounts(count: int) -> str:
    return f"{count} account{'' if count == 1 else 's'}"


def _configured(config: PipelineConfig) -> str:
    if not config.imports:
        return "no imports are configured: add one under 'imports' in the config file"
    return "configured imports: " + ", ".join(sorted(i.name for i in config.imports))


def _check_dimension_types(conn: sa.Connection, imp: ImportConfig) -> None:
    """A dimension keeps the type it was created with (SPEC §2.5)."""
    d = product_dimensions.c
    products = sorted({m.product for m in imp.mappings})
    existing = {
        (row.product, row.dimension): (row.type, row.created_file_id)
        for row in conn.execute(
            sa.select(d.product, d.dimension, d.type, d.created_file_id).where(
                d.product.in_(products)
            )
        )
    }
    for mapping in imp.mappings:
        found = existing.get((mapping.product, mapping.dimension))
        if found is not None and found[0] != mapping.type:
            raise ValueError(
                f"dimension {mapping.dimension!r} of product {mapping.product!r} was created as"
                f" {found[0]} (by file {found[1]}), but import {imp.name!r} now maps column"
                f" {_lower(mapping.column)!r} to it as {mapping.type}; a dimension keeps its"
                f" type, so map the column to a new dimension name or back to {found[0]}"
            )


def _recompute(
    touched_keys: sa.Select, removed: list[int], history: list[str], keep_history: bool
) -> sa.Insert:
    """INSERT the product_usage rows of the touched keys from the remaining observations:
    the latest observation (seq 0), or all of them in file and row order (seq 0, 1, …)."""
    o = product_usage_observations
    key = [o.c[k] for k in KEY]
    order = [o.c.file_id, o.c.row_number]
    if not keep_history:
        order = [c.desc() for c in order]
    rank = sa.func.row_number().over(partition_by=key, order_by=order).label("rank")
    product_filter = o.c.product.in_(history) if keep_history else o.c.product.not_in(history)
    ranked = (
        sa.select(*key, o.c.period, *(o.c[c] for c in VALUE_COLUMNS.values()), o.c.file_id, rank)
        .where(o.c.file_id.not_in(removed), sa.tuple_(*key).in_(touched_keys), product_filter)
        .subquery("ranked")
    )
    seq = (ranked.c.rank - 1) if keep_history else sa.literal(0)
    select = sa.select(
        *(ranked.c[k] for k in KEY),
        seq.label("seq"),
        ranked.c.period,
        *(ranked.c[c] for c in VALUE_COLUMNS.values()),
        ranked.c.file_id,
    )
    if not keep_history:
        select = select.where(ranked.c.rank == 1)
    columns = [*KEY, "seq", "period", *VALUE_COLUMNS.values(), "file_id"]
    return product_usage.insert().from_select(columns, select)


def _create_dimensions(conn: sa.Connection, imp: ImportConfig, file_id: int) -> None:
    """Record each dimension this file stored a value for, with its type, on first use."""
    o = product_usage_observations.c
    used = conn.execute(
        sa.select(o.product, o.dimension).where(o.file_id == file_id).distinct()
    ).all()
    if not used:
        return
    types = {(m.product, m.dimension): m.type for m in imp.mappings}
    rows = [
        {"product": p, "dimension": d, "type": types[(p, d)], "created_file_id": file_id}
        for p, d in used
    ]
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    conn.execute(insert(product_dimensions).on_conflict_do_nothing(), rows)


def _notes(conn: sa.Connection, prepared: PreparedImport, file_id: int) -> dict[str, Any]:
    o = product_usage_observations.c
    periods: dict[str, list[str]] = {}
    found = conn.execute(
        sa.select(o.product, o.period_start)
        .where(o.file_id == file_id)
        .distinct()
        .order_by(o.product, o.period_start)
    )
    for product, start in found:
        listed = periods.setdefault(product, [])
        if len(listed) < UNMATCHED_LISTED:
            listed.append(start.isoformat() if isinstance(start, date) else str(start))
    return {
        "import": prepared.imp.name,
        "unmatched_rows": prepared.unmatched.rows,
        "unmatched_identifiers": list(prepared.unmatched.identifiers),
        "period_starts": periods,
    }


PRODUCT_USAGE = ProductUsageFeed()
