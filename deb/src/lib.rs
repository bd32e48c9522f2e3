//! Reproducible .deb writer and reader.
