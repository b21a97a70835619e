"""``python -m usage_pipeline.cli``: the same as the ``usage-pipeline`` command."""

from usage_pipeline.cli import main

main()
