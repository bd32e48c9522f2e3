//! Zero-downtime socket handoff.
