//! Masking: column-name globs and content detectors over result values.
