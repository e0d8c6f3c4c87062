//! `@file` response-file expansion with GNU quoting. (Being written.)
