"""The warehouse: table definitions, engine, bulk loading."""
