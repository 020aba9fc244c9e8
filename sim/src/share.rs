//! Values the engine changes in place, and shares with snapshots of the world once one is
//! taken.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A value owned outright while no snapshot holds it, and shared (copy on write) after one.
///
/// Handlers write their node's state on every step. Behind an `Arc`, each write would pay
/// `Arc::make_mut`'s atomic compare-and-swap, about a tenth of a token-passing step. Here the
/// atomics are paid once per value per snapshot: [`Shareable::share`] moves the value behind an
/// `Arc` when a snapshot is taken, and the first write after it takes the value back (moving it
/// when the snapshot is gone, copying it while the snapshot lives).
///
/// `Clone` copies an owned value and shares a shared one, so a snapshot taken right after
/// [`Shareable::share`] copies nothing.
///
/// It also remembers one number computed from the value ([`Shareable::memoized`]: a search
/// fingerprints every state it reaches, and a step changes one node of many), forgotten by
/// every [`Shareable::get_mut`], the only way to change the value.
#[derive(Debug)]
pub(crate) struct Shareable<T> {
    value: Inner<T>,
    /// The memoized number; 0 while there is none.
    memo: AtomicU64,
}

#[derive(Debug)]
enum Inner<T> {
    /// Boxed, so that a shared value (what a search's many stored states hold) takes a
    /// pointer's room, not the value's.
    Owned(Box<T>),
    Shared(Arc<T>),
    /// Only while [`Shareable::share`] or [`Shareable::get_mut`] moves the value.
    Moving,
}

impl<T: Clone> Shareable<T> {
    /// An owned value.
    pub(crate) fn new(value: T) -> Shareable<T> {
        Shareable {
            value: Inner::Owned(Box::new(value)),
            memo: AtomicU64::new(0),
        }
    }

    /// The value, to change: taken back from the snapshots that share it.
    #[inline]
    pub(crate) fn get_mut(&mut self) -> &mut T {
        *self.memo.get_mut() = 0;
        if matches!(self.value, Inner::Shared(_)) {
            let Inner::Shared(arc) = std::mem::replace(&mut self.value, Inner::Moving) else {
                unreachable!("checked just above")
            };
            self.value = Inner::Owned(Box::new(Arc::unwrap_or_clone(arc)));
        }
        match &mut self.value {
            Inner::Owned(value) => value,
            Inner::Shared(_) | Inner::Moving => unreachable!("owned just above"),
        }
    }

    /// `compute` of the value, computed once until the value changes. Must be a function of
    /// the value alone. A result of 0 is not remembered (0 marks "none").
    pub(crate) fn memoized(&self, compute: impl FnOnce(&T) -> u64) -> u64 {
        // Relaxed: the number is the same whichever thread computes it.
        match self.memo.load(Ordering::Relaxed) {
            0 => {
                let number = compute(self);
                self.memo.store(number, Ordering::Relaxed);
                number
            }
            number => number,
        }
    }

    /// Makes the value shared, so that clones of it cost a reference count.
    pub(crate) fn share(&mut self) {
        if matches!(self.value, Inner::Owned(_)) {
            let Inner::Owned(value) = std::mem::replace(&mut self.value, Inner::Moving) else {
                unreachable!("checked just above")
            };
            self.value = Inner::Shared(Arc::from(value));
        }
    }
}

impl<T> Deref for Shareable<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        match &self.value {
            Inner::Owned(value) => value,
            Inner::Shared(arc) => arc,
            Inner::Moving => unreachable!("a value is only moving inside share and get_mut"),
        }
    }
}

impl<T: Clone> Clone for Shareable<T> {
    fn clone(&self) -> Shareable<T> {
        Shareable {
            value: match &self.value {
                Inner::Owned(value) => Inner::Owned(value.clone()),
                Inner::Shared(arc) => Inner::Shared(Arc::clone(arc)),
                Inner::Moving => unreachable!("a value is only moving inside share and get_mut"),
            },
            memo: AtomicU64::new(self.memo.load(Ordering::Relaxed)),
        }
    }

    /// Leaves a value shared with `source` where it is: a search copies a state into a scratch
    /// copy of its sibling, and most of the parts they share are the same `Arc` already.
    fn clone_from(&mut self, source: &Self) {
        match (&self.value, &source.value) {
            (Inner::Shared(mine), Inner::Shared(theirs)) if Arc::ptr_eq(mine, theirs) => {
                *self.memo.get_mut() = source.memo.load(Ordering::Relaxed);
            }
            _ => *self = source.clone(),
        }
    }
}

/// Makes `to` share `from`'s value, counting a reference only if it did not already.
pub(crate) fn share_from<T: ?Sized>(to: &mut Arc<T>, from: &Arc<T>) {
    if !Arc::ptr_eq(to, from) {
        *to = Arc::clone(from);
    }
}

impl<T: Clone + Default> Default for Shareable<T> {
    fn default() -> Shareable<T> {
        Shareable::new(T::default())
    }
}

#[cfg(test)]
mod tests {
    use super::Shareable;

    #[test]
    fn a_shared_value_is_copied_on_write_and_the_copy_keeps_the_old_value() {
        let mut live = Shareable::new(vec![1, 2]);
        live.share();
        let snapshot = live.clone();
        live.get_mut().push(3);
        assert_eq!(*live, vec![1, 2, 3]);
        assert_eq!(*snapshot, vec![1, 2]);
    }

    #[test]
    fn an_owned_value_is_cloned_deeply() {
        let mut live = Shareable::new(vec![1]);
        let copy = live.clone();
        live.get_mut().push(2);
        assert_eq!(*copy, vec![1]);
        assert_eq!(*live, vec![1, 2]);
    }

    #[test]
    fn a_memo_lasts_until_the_value_changes_and_copies_keep_theirs() {
        let mut live = Shareable::new(vec![1u64, 2]);
        let sum = |v: &Vec<u64>| v.iter().sum::<u64>();
        assert_eq!(live.memoized(sum), 3);
        // Remembered: a different function is not even asked.
        assert_eq!(live.memoized(|_| unreachable!("remembered")), 3);
        live.share();
        let snapshot = live.clone();
        live.get_mut().push(4);
        assert_eq!(live.memoized(sum), 7);
        assert_eq!(snapshot.memoized(|_| unreachable!("remembered")), 3);
        // Zero is never remembered.
        let empty = Shareable::new(Vec::<u64>::new());
        assert_eq!(empty.memoized(sum), 0);
        assert_eq!(empty.memoized(|_| 9), 9);
    }

    #[test]
    fn a_value_no_snapshot_holds_any_more_is_taken_back_without_a_copy() {
        let mut live = Shareable::new(vec![7u8; 16]);
        live.share();
        let before = live.as_ptr();
        // The Vec (and so its buffer) moved out of the Arc, not copied into a new one.
        assert_eq!(live.get_mut().as_ptr(), before);
    }
}
