//! elf (being written).
