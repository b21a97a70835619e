"""``events``: Kissmetrics-style import of behaviour events, back-dated (SPEC §2.7).

File contract: ``identity``, ``event``, ``timestamp``, then any property columns (kept as
text, keyed by the lower-cased column name). Each valid row lands in ``event_candidates``
(per file, so a correction can retire exactly one file's rows); :func:`store.apply_file`
then recomputes, for exactly the
(identity, event) pairs the file (or the versions it supersedes) touched, the **kept**
events in the public ``events`` table:

- an event is identified by (identity, event, timestamp): repeats inside a file or across
  files are one event, whose properties and ``file_id`` are those of the earliest loaded
  file still holding it (its first row there);
- the throttle (``events.throttle``) keeps, per identity and event name, the first event
  and then each one at least the window after the previous kept one (:mod:`throttle`).

Timestamps follow the one rule of :mod:`usage_pipeline.timestamps` (ISO 8601 with an offset,
naive ISO 8601 in the instance zone, or epoch seconds as Kissmetrics exports them), accepted
from midnight of ``events.floor_date`` (instance zone; never before the first daily
partition, 2009-01-01) to one day after the run's as-of time.

**Imports of existing tables** (``events/<import>/``, configured in ``events.imports``): a
table export whose rows each make the row's own event (fixed, or a column's value through a
map; an unmapped value is a row error) and the ``also`` events, at the row's timestamp for
its identity, as candidates under the same rules (:mod:`.imports`). A file in a sub-folder
that is not a configured import is a plain file.

Modules: :mod:`.contract` (columns, pandera schemas, the per-file settings), :mod:`.rows`
(text cells -> candidate rows and errors), :mod:`.imports` (the same for a table export, and
its ``check`` report), :mod:`.store` (recomputing the kept events), :mod:`.feed` (the
:class:`Feed`).
"""

from usage_pipeline.feeds.events.contract import EventsFileSettings
from usage_pipeline.feeds.events.feed import EVENTS, EventsFeed

__all__ = ["EVENTS", "EventsFeed", "EventsFileSettings"]
