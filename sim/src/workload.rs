//! Workloads: what simulated clients ask for.

use crate::node::ClientId;
use crate::rng::SimRng;

/// Generates client requests: the protocol family's workload (key-value ops, transfers, …).
pub trait Workload<Req>: WorkloadClone<Req> {
    /// The request for operation `seq` of `client`, drawing from that client's workload stream.
    fn next_request(&mut self, client: ClientId, seq: u64, rng: &mut SimRng) -> Req;
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
