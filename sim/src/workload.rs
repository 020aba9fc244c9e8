//! Workloads: what simulated clients ask for.

use crate::node::ClientId;
use crate::rng::SimRng;

/// Generates client requests: the protocol family's workload (key-value ops, transfers, …).
pub trait Workload<Req>: WorkloadClone<Req> + Send + Sync {
    /// The request for operation `seq` of `client`, drawing from that client's workload stream.
    fn next_request(&mut self, client: ClientId, seq: u64, rng: &mut SimRng) -> Req;

    /// The key `request` is for, if requests have keys (any number that is the same for the
    /// same key, e.g. a hash of it). With the clients' `route_by_key` on, a client keeps a
    /// node hint per key, learned from answers and redirects, instead of one hint for every
    /// request: what a client of a sharded store does. Requests without a key use the one hint.
    fn routing_key(&self, request: &Req) -> Option<u64> {
        let _ = request;
        None
    }
}

/// Cloning boxed workloads (for simulation snapshots).
pub trait WorkloadClone<Req> {
    /// A boxed copy.
    fn clone_box(&self) -> Box<dyn Workload<Req>>;
}

impl<Req, T: Workload<Req> + Clone + 'static> WorkloadClone<Req> for T {
    fn clone_box(&self) -> Box<dyn Workload<Req>> {
        Box::new(self.clone())
    }
}

impl<Req> Clone for Box<dyn Workload<Req>> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}
