//! Values the engine changes in place, and shares with snapshots of the world once one is
//! taken.

use std::ops::Deref;
use std::sync::Arc;

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
#[derive(Debug)]
pub(crate) struct Shareable<T>(Inner<T>);

#[derive(Debug)]
enum Inner<T> {
    Owned(T),
    Shared(Arc<T>),
    /// Only while [`Shareable::share`] or [`Shareable::get_mut`] moves the value.
    Moving,
}

impl<T: Clone> Shareable<T> {
    /// An owned value.
    pub(crate) fn new(value: T) -> Shareable<T> {
        Shareable(Inner::Owned(value))
    }

    /// The value, to change: taken back from the snapshots that share it.
    #[inline]
    pub(crate) fn get_mut(&mut self) -> &mut T {
        if matches!(self.0, Inner::Shared(_)) {
            let Inner::Shared(arc) = std::mem::replace(&mut self.0, Inner::Moving) else {
                unreachable!("checked just above")
            };
            self.0 = Inner::Owned(Arc::unwrap_or_clone(arc));
        }
        match &mut self.0 {
            Inner::Owned(value) => value,
            Inner::Shared(_) | Inner::Moving => unreachable!("owned just above"),
        }
    }

    /// Makes the value shared, so that clones of it cost a reference count.
    pub(crate) fn share(&mut self) {
        if matches!(self.0, Inner::Owned(_)) {
            let Inner::Owned(value) = std::mem::replace(&mut self.0, Inner::Moving) else {
                unreachable!("checked just above")
            };
            self.0 = Inner::Shared(Arc::new(value));
        }
    }
}

impl<T> Deref for Shareable<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        match &self.0 {
            Inner::Owned(value) => value,
            Inner::Shared(arc) => arc,
            Inner::Moving => unreachable!("a value is only moving inside share and get_mut"),
        }
    }
}

impl<T: Clone> Clone for Shareable<T> {
    fn clone(&self) -> Shareable<T> {
        Shareable(match &self.0 {
            Inner::Owned(value) => Inner::Owned(value.clone()),
            Inner::Shared(arc) => Inner::Shared(Arc::clone(arc)),
            Inner::Moving => unreachable!("a value is only moving inside share and get_mut"),
        })
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
    fn a_value_no_snapshot_holds_any_more_is_taken_back_without_a_copy() {
        let mut live = Shareable::new(vec![7u8; 16]);
        live.share();
        let before = live.as_ptr();
        // The Vec (and so its buffer) moved out of the Arc, not copied into a new one.
        assert_eq!(live.get_mut().as_ptr(), before);
    }
}
