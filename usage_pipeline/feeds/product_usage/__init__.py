"""``product_usage/<import>/``: Statisfy product-usage imports (SPEC §2.5).

Each folder under ``product_usage/`` is an import configured under ``imports``: which column
identifies the account (and how it is matched, see :mod:`usage_pipeline.matching`), an
optional date column, and mappings CSV column -> product -> dimension -> type. Every cell of
a loaded file is kept in ``product_usage_observations`` (one row per file, row and mapped
cell); :func:`store.apply_file` then recomputes ``product_usage`` for exactly the
(product, account, dimension, period_start) keys the file (and the versions it supersedes)
touched: the latest observation wins, or, for products with
``allow_multiple_rows_per_customer``, every observation is kept and numbered ``seq``.

Decisions where the spec is silent (docs/feeds.md):

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

Modules: :mod:`.contract` (columns, cell parsers, pandera schema), :mod:`.state` (the typed
per-file state), :mod:`.rows` (text cells -> observations and errors), :mod:`.report` (the
``check`` report), :mod:`.store` (applying a loaded file), :mod:`.feed` (the :class:`Feed`).
"""

from usage_pipeline.feeds.product_usage.feed import PRODUCT_USAGE, ProductUsageFeed
from usage_pipeline.feeds.product_usage.state import PreparedImport

__all__ = ["PRODUCT_USAGE", "PreparedImport", "ProductUsageFeed"]
