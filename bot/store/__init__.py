"""Storage: engines and migrations, the tables, the read view handlers decide on and the writers of
their changes, and SQLite's single-writer machinery."""
