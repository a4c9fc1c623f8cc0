//! The figures of the map's nodes over a range, read from the whole map whatever part of it
//! a page shows.

use std::collections::HashMap;

use super::{GraphFilter, GraphRange, QueryError, QueryService};
use crate::graph::analysis::GraphView;
use crate::model::figures::{self, NodeTraffic};
use crate::model::graph::NodeKey;

/// What the map's nodes served over a range, and the versions its services ran.
#[derive(Debug, Clone, Default)]
pub struct NodeFigures {
    pub traffic: HashMap<NodeKey, NodeTraffic>,
    /// Each service's `service.version`s in the range, sorted (none when it reported none).
    pub versions: HashMap<NodeKey, Vec<String>>,
}

impl QueryService {
    /// Every node's traffic over `range` ([`figures::node_traffic`]): services' from their
    /// own operations, other nodes' from the calls into them on the whole map. `view` is the
    /// map as read with `filter`; a filtered one is read again whole, since a focus or a
    /// namespace narrows what is shown, never a node's figures (a service at the focus's
    /// rim would otherwise lose the calls from beyond it).
    pub async fn node_traffic(
        &self,
        range: GraphRange,
        filter: &GraphFilter,
        view: &GraphView,
    ) -> Result<NodeFigures, QueryError> {
        let services = self.services(range, None).await?;
        let whole_map;
        let edges = if shows_whole_map(filter) {
            &view.edges
        } else {
            whole_map = self.graph(range, &GraphFilter::default()).await?;
            &whole_map.edges
        };
        let operations = services
            .iter()
            .map(|service| (service.name.as_str(), &service.stats));
        let traffic = figures::node_traffic(edges, operations, &self.targets);
        let versions = services
            .iter()
            .filter(|service| !service.stats.versions.is_empty())
            .map(|service| {
                let names = service.stats.versions.iter().map(|v| v.version.clone());
                (NodeKey::service(service.name.clone()), names.collect())
            })
            .collect();
        Ok(NodeFigures { traffic, versions })
    }
}

fn shows_whole_map(filter: &GraphFilter) -> bool {
    filter.namespace.is_none() && filter.focus.is_none()
}
