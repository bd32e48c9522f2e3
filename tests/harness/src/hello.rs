//! Builds and runs the example `hello` service (to be written).
