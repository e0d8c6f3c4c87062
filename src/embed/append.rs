//! Post-link placement of a note in a new segment. (Being written.)

/// Why a note could not be appended.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Not yet available.
    #[error("appending a note segment is not implemented yet")]
    Unsupported,
}

/// Append `section` as `.note.nixos.ldcache` in a new segment.
pub fn append_note(_data: &[u8], _section: &[u8]) -> Result<Vec<u8>, AppendError> {
    Err(AppendError::Unsupported)
}
