//! The service names the engine has seen on span resources, so a client span whose server
//! never reported but whose `peer.service` names an instrumented service becomes an edge to
//! that service's node instead of a look-alike `external:` node. Bounded: when full it starts
//! over (it is a cache; forgetting only delays the mapping until the service reports again).

use std::sync::Arc;

use crate::model::graph::NodeKind;

use super::classify::{NodeRef, Peer};
use super::hash::FastSet;

/// Slots of the recently-observed cache (a power of two).
const NUM_RECENT: usize = 64;

pub struct KnownServices {
    names: FastSet<Arc<str>>,
    max_names: usize,
    /// Service names recently observed, by address: spans share their resource's name, so
    /// most observations end at one pointer comparison. Holding the `Arc` keeps its address
    /// from being reused by another name, so a match is always right.
    recent: [Option<Arc<str>>; NUM_RECENT],
    num_resets: u64,
}

impl KnownServices {
    pub fn new(max_names: usize) -> Self {
        debug_assert!(max_names > 0);
        Self {
            names: FastSet::default(),
            max_names,
            recent: [const { None }; NUM_RECENT],
            num_resets: 0,
        }
    }

    pub fn observe(&mut self, service: &Arc<str>) {
        let slot = (Arc::as_ptr(service).cast::<u8>() as usize >> 4) % NUM_RECENT;
        if self.recent[slot]
            .as_ref()
            .is_some_and(|recent| Arc::ptr_eq(recent, service))
        {
            return;
        }
        self.recent[slot] = Some(Arc::clone(service));
        if self.names.contains(&**service) {
            return;
        }
        if self.names.len() >= self.max_names {
            self.names.clear();
            self.num_resets += 1;
        }
        self.names.insert(Arc::clone(service));
    }

    /// The node a peer stands for: the service of that name if the peer is a logical name
    /// of a known service, else the peer's own (virtual) node.
    pub fn resolve(&self, peer: &Peer) -> NodeRef {
        if peer.is_logical_name
            && peer.node.kind == NodeKind::External
            && let Some(service) = self.names.get(&*peer.node.name)
        {
            return NodeRef {
                kind: NodeKind::Service,
                name: Arc::clone(service),
            };
        }
        peer.node.clone()
    }

    /// Times the set was full and started over.
    pub fn num_resets(&self) -> u64 {
        self.num_resets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logical(name: &str) -> Peer {
        Peer {
            node: NodeRef::new(NodeKind::External, name),
            is_logical_name: true,
        }
    }

    #[test]
    fn logical_names_of_known_services_resolve_to_the_service() {
        let mut services = KnownServices::new(10);
        services.observe(&Arc::from("payments"));
        assert_eq!(
            services.resolve(&logical("payments")),
            NodeRef::new(NodeKind::Service, "payments")
        );
        assert_eq!(
            services.resolve(&logical("stripe")),
            NodeRef::new(NodeKind::External, "stripe")
        );
        let address = Peer {
            is_logical_name: false,
            ..logical("payments")
        };
        assert_eq!(services.resolve(&address).kind, NodeKind::External);
    }

    #[test]
    fn a_full_set_starts_over() {
        let mut services = KnownServices::new(2);
        for name in ["a", "b", "c"] {
            services.observe(&Arc::from(name));
        }
        assert_eq!(services.num_resets(), 1);
        assert_eq!(services.resolve(&logical("c")).kind, NodeKind::Service);
        assert_eq!(services.resolve(&logical("a")).kind, NodeKind::External);
    }
}
