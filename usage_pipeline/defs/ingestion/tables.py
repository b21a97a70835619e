"""The tables ingestion itself rewrites (in each file's transaction): each ingestion run
reports a materialisation of the ones it touched."""

import dagster as dg

TABLE_ASSETS = [
    dg.AssetSpec(name, group_name=group, deps=["inbox_file"], description=description)
    for name, group, description in (
        ("accounts", "accounts", "Account directory: latest file wins per account."),
        (
            "account_attribute_history",
            "accounts",
            "Attribute values per account with valid_from/valid_to; a row per change.",
        ),
        (
            "product_usage",
            "product_usage",
            "Product-usage dimension values per account and snapshot period.",
        ),
        ("usage_events", "billing", "Billable usage events, one per event_ref."),
        ("events", "behaviour", "Back-dated behaviour events kept after throttling."),
    )
]
