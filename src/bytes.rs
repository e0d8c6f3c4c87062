//! Bytes shown to people: paths and sonames are bytes (ELF strings and Unix paths need not be
//! UTF-8), turned into text only for messages and JSON.

/// The bytes as text, invalid UTF-8 replaced by U+FFFD (for messages and JSON only; never for a
/// path that is opened or written back).
pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
