//! The server-side map: `layout` places nodes (pure, deterministic), `svg` draws them.

pub mod layout;
pub mod svg;
