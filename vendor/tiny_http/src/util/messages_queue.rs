use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

enum Control<T> {
    Elem(T),
    Unblock,
}

/// How many times a thread that finds the queue empty gives its core away
/// (`sched_yield`) and looks again before it goes to sleep. Under load the
/// next request is usually a few microseconds away, parsed by a connection
/// thread that is waiting for a core: yielding lets it run and keeps this
/// thread awake, where sleeping costs a futex wait here, a futex wake in the
/// pusher and two context switches. With nothing else to run, a yield
/// returns at once, so an idle server loses a few microseconds, no more.
/// More than a few yields measured worse: they take the core from threads
/// with work of their own.
const YIELDS_BEFORE_SLEEP: usize = 3;

pub struct MessagesQueue<T>
where
    T: Send,
{
    queue: Mutex<Queue<T>>,
    condvar: Condvar,
}

/// The queued messages and how many threads sleep waiting for one. A
/// pusher wakes a thread only if one sleeps, and only after letting go of
/// the lock: waking one that is busy anyway is a wasted system call, and
/// waking one while still holding the lock sends it straight back to sleep
/// on the mutex.
struct Queue<T> {
    items: VecDeque<Control<T>>,
    sleeping: usize,
}

impl<T> Queue<T> {
    /// `Some(Some(value))` for a message, `Some(None)` for an unblock,
    /// `None` if the queue is empty.
    fn take(&mut self) -> Option<Option<T>> {
        match self.items.pop_front()? {
            Control::Elem(value) => Some(Some(value)),
            Control::Unblock => Some(None),
        }
    }
}

impl<T> MessagesQueue<T>
where
    T: Send,
{
    pub fn with_capacity(capacity: usize) -> Arc<MessagesQueue<T>> {
        Arc::new(MessagesQueue {
            queue: Mutex::new(Queue {
                items: VecDeque::with_capacity(capacity),
                sleeping: 0,
            }),
            condvar: Condvar::new(),
        })
    }

    /// Pushes an element to the queue.
    pub fn push(&self, value: T) {
        self.push_control(Control::Elem(value));
    }

    /// Unblock one thread stuck in pop loop.
    pub fn unblock(&self) {
        self.push_control(Control::Unblock);
    }

    fn push_control(&self, control: Control<T>) {
        let mut queue = self.queue.lock().unwrap();
        queue.items.push_back(control);
        let wake = queue.sleeping > 0;
        drop(queue);
        if wake {
            self.condvar.notify_one();
        }
    }

    /// Takes what the queue holds, looking again after each of a few
    /// yields (`YIELDS_BEFORE_SLEEP`); `None` if it stayed empty.
    fn take_before_sleeping(&self) -> Option<Option<T>> {
        for _ in 0..YIELDS_BEFORE_SLEEP {
            if let Some(taken) = self.queue.lock().unwrap().take() {
                return Some(taken);
            }
            std::thread::yield_now();
        }
        None
    }

    /// Pops an element. Blocks until one is available.
    /// Returns None in case unblock() was issued.
    pub fn pop(&self) -> Option<T> {
        if let Some(taken) = self.take_before_sleeping() {
            return taken;
        }
        let mut queue = self.queue.lock().unwrap();

        loop {
            if let Some(taken) = queue.take() {
                return taken;
            }

            queue.sleeping += 1;
            queue = self.condvar.wait(queue).unwrap();
            queue.sleeping -= 1;
        }
    }

    /// Tries to pop an element without blocking.
    pub fn try_pop(&self) -> Option<T> {
        self.queue.lock().unwrap().take().flatten()
    }

    /// Tries to pop an element without blocking
    /// more than the specified timeout duration
    /// or unblock() was issued
    pub fn pop_timeout(&self, timeout: Duration) -> Option<T> {
        if let Some(taken) = self.take_before_sleeping() {
            return taken;
        }
        let mut queue = self.queue.lock().unwrap();
        let mut duration = timeout;
        loop {
            if let Some(taken) = queue.take() {
                return taken;
            }
            let now = Instant::now();
            queue.sleeping += 1;
            let (_queue, result) = self.condvar.wait_timeout(queue, timeout).unwrap();
            queue = _queue;
            queue.sleeping -= 1;
            let sleep_time = now.elapsed();
            duration = if duration > sleep_time {
                duration - sleep_time
            } else {
                Duration::from_millis(0)
            };
            if result.timed_out()
                || (duration.as_secs() == 0 && duration.subsec_nanos() < 1_000_000)
            {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MessagesQueue;
    use std::time::{Duration, Instant};

    #[test]
    fn a_message_pushed_while_a_thread_waits_reaches_it() {
        let queue = MessagesQueue::with_capacity(4);
        let pusher = queue.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            pusher.push(7);
        });
        assert_eq!(queue.pop_timeout(Duration::from_secs(10)), Some(7));
        thread.join().unwrap();
        queue.push(8);
        assert_eq!(queue.pop(), Some(8));
    }

    #[test]
    fn an_empty_queue_times_out_and_an_unblock_ends_a_wait() {
        let queue = MessagesQueue::<u32>::with_capacity(4);
        let started = Instant::now();
        assert_eq!(queue.pop_timeout(Duration::from_millis(30)), None);
        assert!(started.elapsed() >= Duration::from_millis(30));
        queue.unblock();
        assert_eq!(queue.pop(), None);
        queue.push(1);
        queue.unblock();
        assert_eq!(queue.pop_timeout(Duration::from_secs(10)), Some(1));
        assert_eq!(queue.pop_timeout(Duration::from_secs(10)), None);
        assert_eq!(queue.try_pop(), None);
    }
}
