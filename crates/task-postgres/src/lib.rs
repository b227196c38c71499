//! A PostgreSQL TaskStore: FOR UPDATE SKIP LOCKED claiming and a LISTEN/NOTIFY change feed shared across instances.
