//! Store-and-forward: a bounded in-memory queue in front of a sink, spilling to a persistent
//! store (SQLite or Redis) while the sink is unreachable and replaying in order as soon as
//! it is back.
