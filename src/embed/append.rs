//! Post-link placement of a note in a new segment. (Being written.)
