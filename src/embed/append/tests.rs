//! Unit tests: bad input gets a typed error, never a panic.

use super::{append_note, AppendError};

const NOTE: &[u8] = &[0u8; 8];

#[test]
fn rejects_bad_section() {
    assert!(matches!(
        append_note(&[], &[]),
        Err(AppendError::BadSection(_))
    ));
    assert!(matches!(
        append_note(&[], &[0; 6]),
        Err(AppendError::BadSection(_))
    ));
}

#[test]
fn rejects_garbage() {
    assert_eq!(append_note(b"hello world", NOTE), Err(AppendError::NotElf));
    assert_eq!(append_note(&[], NOTE), Err(AppendError::NotElf));
}
