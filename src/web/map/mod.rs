//! The server-side map: `layering` orders nodes in layers (placeholders for long edges),
//! `layout` places boxes and routes edges (pure, deterministic), `labels` finds room for edge
//! labels, `text` measures and marks what is written, `svg` draws it all.

pub mod changes;
mod geometry;
pub mod groups;
mod labels;
mod layering;
pub mod layout;
pub mod svg;
mod text;
