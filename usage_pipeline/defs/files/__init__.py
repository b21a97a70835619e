"""Jobs an engineer launches for one file: revert and reprocess."""
