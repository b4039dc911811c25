//! Standardizers for the canonical model. Each is a pure function, exposed on its own in SQL.
pub mod color;
pub mod geo;
pub mod money;
pub mod size;
pub mod time;
