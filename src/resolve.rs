//! resolve (being written).
