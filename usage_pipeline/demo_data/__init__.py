"""Sample drops of the seed feeds for ``usage-pipeline demo`` (one module per feed)."""
