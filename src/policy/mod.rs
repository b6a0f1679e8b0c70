//! Policy: command rules and result masking.
