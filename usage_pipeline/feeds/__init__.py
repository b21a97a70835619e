"""The feed registry: folder name -> feed contract."""

from usage_pipeline.feeds.account_attributes import ACCOUNT_ATTRIBUTES
from usage_pipeline.feeds.account_usage import ACCOUNT_USAGE
from usage_pipeline.feeds.accounts import ACCOUNTS
from usage_pipeline.feeds.base import ChunkResult, Feed, FeedChange, FeedCheck, FileContext
from usage_pipeline.feeds.events import EVENTS
from usage_pipeline.feeds.product_usage import PRODUCT_USAGE
from usage_pipeline.feeds.usage_events import USAGE_EVENTS
from usage_pipeline.feeds.user_activity import USER_ACTIVITY

FEEDS: dict[str, Feed] = {
    feed.name: feed
    for feed in (
        USER_ACTIVITY,
        EVENTS,
        PRODUCT_USAGE,
        USAGE_EVENTS,
        ACCOUNT_USAGE,
        ACCOUNT_ATTRIBUTES,
        ACCOUNTS,
    )
}

__all__ = ["FEEDS", "ChunkResult", "Feed", "FeedChange", "FeedCheck", "FileContext"]
