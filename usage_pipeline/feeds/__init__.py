"""The feed registry: folder name -> feed contract."""

from usage_pipeline.feeds.base import ChunkResult, Feed, FeedChange, FeedCheck, FileContext
from usage_pipeline.feeds.user_activity import USER_ACTIVITY

FEEDS: dict[str, Feed] = {feed.name: feed for feed in (USER_ACTIVITY,)}

__all__ = ["FEEDS", "ChunkResult", "Feed", "FeedChange", "FeedCheck", "FileContext"]
