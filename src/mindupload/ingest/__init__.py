"""Ingest (rules parse_source, combine_messages): chat exports -> the normalized message table.

`sources/` holds one module per export format behind a small registry; `parse` runs one and refuses to lose
data quietly; `table` is the message table's schema; `exclusions` drops excluded contacts and conversations."""
