//! Embedded store writer (being written).
