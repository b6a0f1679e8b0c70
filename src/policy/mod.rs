//! Policy: command rules (what may reach a target) and result masking (what a
//! caller may see). Pure, allocation-free on the hot path, no I/O.

pub mod mask;
pub mod rules;
pub mod workbench;
