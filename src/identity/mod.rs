//! Identity: short-lived tokens and workload certificates in, no static secrets.
