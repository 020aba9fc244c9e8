// Each stub is the learner's to write; its `todo!` says what it is for.
#![allow(clippy::todo)]

use simlab_protocols::locks::Access;

// ANCHOR: exercise
/// Decides whether the storage serves an access made under lock grant `token`.
///
/// `fence` is the highest token the storage has let through so far (0 at first); update it.
/// Every worker's critical section is a read followed by a write, both carrying the token of
/// its grant, and the tokens of successive grants go up by one. Let through whatever cannot
/// come from a holder whose lease has ended, and refuse the rest.
pub fn fence(fence: &mut u64, token: u64, access: Access) -> bool {
    let _ = (fence, token, access);
    todo!("the fencing check")
}
// ANCHOR_END: exercise
