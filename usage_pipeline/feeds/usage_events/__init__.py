"""``usage_events``: Solvimon usage file upload, billable usage events (SPEC §2.6).

Template: ``customer_ref, subscription_ref, event_ref, timestamp, event`` then the configured
meter and property columns (``usage_events.meters`` / ``.properties``). ``subscription_ref``
and ``timestamp`` may be left out; every other template column is required, and any other
column rejects the file.

The feed is strict: one invalid row rejects the whole file, with every problem reported.
Valid rows are staged in ``usage_event_rows``; :func:`store.apply_file` then moves the
events whose ``event_ref`` is new into ``usage_events`` (a known ref is skipped and counted as
a duplicate), explodes their meters into ``usage_event_meters`` (what ``usage_meter_daily`` is
rolled up from), empties the staging rows and refreshes ``billing_periods``.

Modules: :mod:`.contract` (columns, layout, pandera schema), :mod:`.state` (the typed
per-file state), :mod:`.rows` (text cells -> staging rows and errors), :mod:`.store`
(applying a loaded file), :mod:`.feed` (the :class:`Feed` that wires them).
"""

from usage_pipeline.feeds.usage_events.feed import USAGE_EVENTS, UsageEventsFeed
from usage_pipeline.feeds.usage_events.state import FileState, SeenRefs

__all__ = ["USAGE_EVENTS", "FileState", "SeenRefs", "UsageEventsFeed"]
