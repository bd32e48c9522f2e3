//! Debian root sandboxes for real dpkg (to be written).
