//! The map compared with an earlier period (`query::GraphDiff`): new edges and nodes green,
//! vanished ones dashed grey with what they carried, changed edges with a badge saying what
//! changed ("p95 ×5.0"). Unchanged ones are drawn as always.

use std::collections::HashMap;

use super::text::{EdgeText, LineStyle};
use crate::graph::diff::Change;
use crate::model::graph::{EdgeKey, NodeKey};
use crate::query::GraphDiff;
use crate::web::format;

/// Each edge's and node's change, for the drawing.
#[derive(Debug, Clone, Default)]
pub struct MapChanges {
    edges: HashMap<EdgeKey, (Change, Vec<String>)>,
    nodes: HashMap<NodeKey, Change>,
}

impl MapChanges {
    pub fn of(diff: &GraphDiff) -> Self {
        Self {
            edges: diff
                .edges
                .iter()
                .map(|edge| (edge.key.clone(), (edge.change, edge.reasons.clone())))
                .collect(),
            nodes: diff
                .nodes
                .iter()
                .map(|(key, _, change)| (key.clone(), *change))
                .collect(),
        }
    }

    /// The class an edge or node gets for its change (" diff-new"), or "".
    pub fn edge_class(&self, key: &EdgeKey) -> &'static str {
        class(self.edges.get(key).map(|(change, _)| *change))
    }

    pub fn node_class(&self, key: &NodeKey) -> &'static str {
        class(self.nodes.get(key).copied())
    }

    /// The badge of a new or vanished node.
    pub fn node_badge(&self, key: &NodeKey) -> Option<(LineStyle, String)> {
        match self.nodes.get(key)? {
            Change::New => Some((LineStyle::New, "new".to_owned())),
            Change::Vanished => Some((LineStyle::Gone, "gone".to_owned())),
            Change::Changed | Change::Unchanged => None,
        }
    }

    /// Marks an edge's label with its change; a vanished edge says what it carried before.
    pub fn mark_edge(&self, key: &EdgeKey, text: &mut EdgeText) {
        match self.edges.get(key) {
            Some((Change::New, _)) => text.badge(LineStyle::New, "new".to_owned()),
            Some((Change::Vanished, _)) => {
                let before: Vec<String> = text.lines.iter().map(|(_, line)| line.plain()).collect();
                *text = EdgeText::default();
                text.badge(
                    LineStyle::Gone,
                    format!("gone · was {}", before.join(" · ")),
                );
            }
            Some((Change::Changed, reasons)) => {
                text.badge(LineStyle::Change, format::changes_text(reasons));
            }
            Some((Change::Unchanged, _)) | None => {}
        }
    }
}

fn class(change: Option<Change>) -> &'static str {
    match change {
        Some(Change::New) => " diff-new",
        Some(Change::Vanished) => " diff-vanished",
        Some(Change::Changed) => " diff-changed",
        Some(Change::Unchanged) | None => "",
    }
}
