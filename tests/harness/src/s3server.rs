//! Real S3-compatible servers for tests (to be written).
