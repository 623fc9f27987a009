//! The one-shot slot a writer job answers its caller through.
//!
//! A channel would do, but a waiting crossbeam receiver spins and then calls
//! `sched_yield` in a loop before it sleeps; a caller waits for a whole
//! group commit, so on a busy machine that loop was a seventh of a worker's
//! time under writes. A mutex and a condition variable sleep at once and
//! wake once.

use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// The writer's end: fills the slot once. Dropping it unfilled (the job was
/// dropped, e.g. when the writer thread stopped) wakes the caller with
/// nothing.
pub struct Answer<T> {
    slot: Arc<Slot<T>>,
}

/// The caller's end.
pub struct Waiter<T> {
    slot: Arc<Slot<T>>,
}

struct Slot<T> {
    state: Mutex<State<T>>,
    changed: Condvar,
}

enum State<T> {
    Empty,
    Filled(T),
    /// The answer end was dropped unfilled, or the value was taken.
    Closed,
}

/// A new slot's two ends.
pub fn slot<T>() -> (Answer<T>, Waiter<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State::Empty),
        changed: Condvar::new(),
    });
    (Answer { slot: slot.clone() }, Waiter { slot })
}

impl<T> Answer<T> {
    /// Hands `value` to the caller (kept if nobody waits any more).
    pub fn send(self, value: T) {
        self.slot.set(State::Filled(value));
    }
}

impl<T> Drop for Answer<T> {
    fn drop(&mut self) {
        let mut state = self.slot.lock();
        if matches!(*state, State::Empty) {
            *state = State::Closed;
            drop(state);
            self.slot.changed.notify_one();
        }
    }
}

impl<T> Waiter<T> {
    /// Sleeps until the answer comes; `None` when it never will.
    pub fn wait(self) -> Option<T> {
        let mut state = self.slot.lock();
        loop {
            match std::mem::replace(&mut *state, State::Closed) {
                State::Filled(value) => return Some(value),
                State::Closed => return None,
                State::Empty => {
                    *state = State::Empty;
                    state = self
                        .slot
                        .changed
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }
}

impl<T> Slot<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        // Nothing runs under this lock that could panic half-way.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, new: State<T>) {
        *self.lock() = new;
        self.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sent_value_reaches_the_waiter_on_another_thread() {
        let (answer, waiter) = slot();
        let sender = std::thread::spawn(move || answer.send(42));
        assert_eq!(waiter.wait(), Some(42));
        sender.join().unwrap();
    }

    #[test]
    fn a_value_sent_before_the_wait_is_kept() {
        let (answer, waiter) = slot();
        answer.send("done");
        assert_eq!(waiter.wait(), Some("done"));
    }

    #[test]
    fn dropping_the_answer_unfilled_wakes_the_waiter_with_nothing() {
        let (answer, waiter) = slot::<u8>();
        let dropper = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            drop(answer);
        });
        assert_eq!(waiter.wait(), None);
        dropper.join().unwrap();
    }

    #[test]
    fn sending_after_the_waiter_left_is_harmless() {
        let (answer, waiter) = slot();
        drop(waiter);
        answer.send(1);
    }
}
