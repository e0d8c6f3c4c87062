//! reserve (being written).
