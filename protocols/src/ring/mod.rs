//! Consistent-hash rebalancing: the ring every member and client computes ownership from, and
//! the theory of how keys move and spread, measured.
//!
//! - [`hash_ring`]: members, virtual nodes, successor lists, the arcs that move between two
//!   memberships, and bounded-load placement.
//! - [`theory`]: the measured table behind `simlab ring-stats` and the book's chapter.

pub mod hash_ring;
pub mod theory;

pub use hash_ring::{KeyRange, Point, Ring, Transfer, key_point, ring_hash};
