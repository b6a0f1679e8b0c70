//! tollgate's segmented, compressed, hash-chained session log.
