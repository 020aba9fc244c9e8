use simlab_protocols::locks::Access;

// ANCHOR: solution
/// Decides whether the storage serves an access made under lock grant `token`.
pub fn fence(fence: &mut u64, token: u64, _access: Access) -> bool {
    // A token below the highest seen belongs to a grant that a newer one has replaced: its
    // holder's lease has ended, whatever it believes. Refuse it.
    if token < *fence {
        return false;
    }
    // Equal is the current holder (its read, then its write). Reads raise the fence as much as
    // writes do: a newer holder's read starts a critical section no older write may enter.
    *fence = token;
    true
}
// ANCHOR_END: solution
