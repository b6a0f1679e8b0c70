//! Upstream authentication for PostgreSQL: SCRAM-SHA-256 (with and without channel binding), md5, cleartext.
