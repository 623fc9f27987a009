//! The `satchel-sse` writers: a small pool of threads that put queued
//! messages on the clients' sockets, and the watch that keeps one stuck
//! socket from holding a writer for long.
//!
//! Why a pool rather than a thread per client: an event for 1,000
//! subscribers used to wake 1,000 threads one by one, and on two cores the
//! wake-ups and context switches cost more than the writes. A few writers go
//! through the clients that have work back to back, one write (one syscall)
//! per client for everything it has waiting. Idle clients cost no thread.
//!
//! A write to a peer that stopped reading blocks once the socket's buffers
//! are full (the raw writer has no timeout). The timers thread calls
//! [`Writers::retire_stuck`]: a writer busy on one write for longer than the
//! stall timeout has its client let go and is replaced, so the others never
//! fall behind by more than that; the stuck thread ends the stream and exits
//! once its write returns (the peer reads or goes away).

use super::client::Message;
use super::outlet::{Outlet, Step, StreamEnd};
use super::wire::{push_event_chunk, HEARTBEAT_CHUNK};
use super::Clock;
use crossbeam_channel::{unbounded, Receiver, Sender};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A writer's buffer above this is given back after use, so one huge
/// backlog does not pin its memory for good.
const KEEP_BUFFER_BYTES: usize = 256 * 1024;

/// The hub's end: hands clients with work to the pool. Dropping it lets
/// the writers finish what is queued and exit.
pub(crate) struct Writers {
    ready: Sender<Arc<Outlet>>,
    pool: Arc<Pool>,
}

struct Pool {
    ready: Receiver<Arc<Outlet>>,
    writers: Mutex<Vec<Arc<Writer>>>,
    clock: Clock,
    stack_size: usize,
}

/// What the watch sees of one writer thread.
struct Writer {
    /// The write in progress, if any. Set and cleared around each write,
    /// and read by the watch under the same lock, so the watch can never
    /// blame a client the writer has already moved past.
    busy: Mutex<Option<Busy>>,
    /// Replaced after a stuck write: exits once that write returns.
    retired: AtomicBool,
}

struct Busy {
    /// When the write started, on the hub's clock.
    since_ms: u64,
    outlet: Arc<Outlet>,
}

impl Writers {
    /// Starts `count` writers (at least one).
    pub(crate) fn start(count: usize, stack_size: usize, clock: Clock) -> std::io::Result<Writers> {
        let (ready, receiver) = unbounded();
        let pool = Arc::new(Pool {
            ready: receiver,
            writers: Mutex::new(Vec::new()),
            clock,
            stack_size,
        });
        for _ in 0..count.max(1) {
            spawn_writer(&pool)?;
        }
        Ok(Writers { ready, pool })
    }

    /// Gives a client with work to the next free writer.
    pub(crate) fn schedule(&self, outlet: &Arc<Outlet>) {
        // The pool holds a receiver, so this cannot fail while `self` lives.
        let _ = self.ready.send(Arc::clone(outlet));
    }

    /// Lets go of the clients whose write has been blocked since before
    /// `now_ms - stall_ms` and starts a replacement for each stuck writer.
    pub(crate) fn retire_stuck(&self, now_ms: u64, stall_ms: u64) {
        let writers: Vec<Arc<Writer>> = lock(&self.pool.writers).clone();
        for writer in writers {
            let outlet = {
                let busy = lock(&writer.busy);
                match busy.as_ref() {
                    Some(b) if now_ms.saturating_sub(b.since_ms) >= stall_ms => {
                        if writer.retired.swap(true, Ordering::SeqCst) {
                            continue;
                        }
                        Arc::clone(&b.outlet)
                    }
                    _ => continue,
                }
            };
            log::warn!(
                "realtime client {} stopped reading; disconnecting it",
                outlet.id
            );
            outlet.close(StreamEnd::Stalled);
            outlet.depart();
            if let Err(e) = spawn_writer(&self.pool) {
                log::error!("realtime: could not start a replacement writer: {e}");
            }
        }
    }
}

fn spawn_writer(pool: &Arc<Pool>) -> std::io::Result<()> {
    let writer = Arc::new(Writer {
        busy: Mutex::new(None),
        retired: AtomicBool::new(false),
    });
    lock(&pool.writers).push(Arc::clone(&writer));
    let thread_pool = Arc::clone(pool);
    let thread_writer = Arc::clone(&writer);
    let spawned = std::thread::Builder::new()
        .name("satchel-sse".into())
        .stack_size(pool.stack_size)
        .spawn(move || run_writer(&thread_pool, &thread_writer));
    if let Err(e) = spawned {
        lock(&pool.writers).retain(|w| !Arc::ptr_eq(w, &writer));
        return Err(e);
    }
    Ok(())
}

/// Until the hub is gone (or this writer is retired): take a client with
/// work and serve it until it has none.
fn run_writer(pool: &Pool, me: &Arc<Writer>) {
    let mut buffer = Vec::new();
    while let Ok(outlet) = pool.ready.recv() {
        let served = catch_unwind(AssertUnwindSafe(|| {
            serve(&outlet, me, &pool.clock, &mut buffer)
        }));
        *lock(&me.busy) = None;
        if served.is_err() {
            log::error!(
                "realtime writer panicked on client {}; closing its stream",
                outlet.id
            );
            outlet.finish(&StreamEnd::ClosedByHub);
            buffer = Vec::new();
        }
        if buffer.capacity() > KEEP_BUFFER_BYTES {
            buffer = Vec::new();
        }
        if me.retired.load(Ordering::SeqCst) {
            break;
        }
    }
    lock(&pool.writers).retain(|w| !Arc::ptr_eq(w, me));
}

/// Writes what the client has waiting, in one write per round, until it has
/// nothing left or its stream ends.
fn serve(outlet: &Arc<Outlet>, me: &Writer, clock: &Clock, buffer: &mut Vec<u8>) {
    loop {
        let messages = match outlet.next_step() {
            Step::Idle => return,
            Step::End(end) => {
                outlet.finish(&end);
                return;
            }
            Step::Write(messages) => messages,
        };
        buffer.clear();
        let with_message = frame(outlet, &messages, buffer);
        *lock(&me.busy) = Some(Busy {
            since_ms: clock.now_ms(),
            outlet: Arc::clone(outlet),
        });
        let written = outlet.write(buffer);
        *lock(&me.busy) = None;
        match written {
            Ok(()) => outlet.wrote(clock.now_ms(), with_message),
            Err(e) => {
                outlet.finish(&StreamEnd::WriteFailed(e));
                return;
            }
        }
    }
}

/// Appends the chunks for `messages` to `buffer`; true if any is a real
/// message rather than a heartbeat (heartbeats do not hold off the idle
/// timeout).
fn frame(outlet: &Outlet, messages: &[Message], buffer: &mut Vec<u8>) -> bool {
    let mut with_message = false;
    for message in messages {
        if message.is_probe() {
            buffer.extend_from_slice(HEARTBEAT_CHUNK);
        } else {
            with_message = true;
            push_event_chunk(buffer, outlet.id.as_str(), &message.event, &message.data);
        }
    }
    with_message
}

/// The pool's data stays consistent under every lock here, so a poisoned
/// lock (a panic elsewhere) is safe to keep using.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
