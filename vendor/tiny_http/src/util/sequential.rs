//! Keeps a connection's requests in order: each request's body reader and
//! response writer become usable only once the previous request is done
//! with them. The reader itself is handed from one request to the next; the
//! writer is shared, and each request waits for its predecessor's "done".

use std::io::Result as IoResult;
use std::io::{BufRead, Read, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use std::mem;

/// A value handed over once from one thread to another. Cheaper than a
/// channel for this: one small allocation, and no system call unless the
/// receiving side is already asleep.
struct Baton<T> {
    state: Mutex<BatonState<T>>,
    arrived: Condvar,
}

struct BatonState<T> {
    value: Option<T>,
    waiting: bool,
}

impl<T> Baton<T> {
    fn new() -> Arc<Baton<T>> {
        Arc::new(Baton {
            state: Mutex::new(BatonState {
                value: None,
                waiting: false,
            }),
            arrived: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BatonState<T>> {
        // A panic while the lock is held leaves nothing half-done here.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn put(&self, value: T) {
        let mut state = self.lock();
        state.value = Some(value);
        let wake = state.waiting;
        drop(state);
        if wake {
            self.arrived.notify_one();
        }
    }

    fn take(&self) -> T {
        let mut state = self.lock();
        loop {
            if let Some(value) = state.value.take() {
                return value;
            }
            state.waiting = true;
            state = self
                .arrived
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

pub struct SequentialReaderBuilder<R>
where
    R: Read + Send,
{
    inner: SequentialReaderBuilderInner<R>,
}

enum SequentialReaderBuilderInner<R>
where
    R: Read + Send,
{
    First(R),
    NotFirst(Arc<Baton<R>>),
}

pub struct SequentialReader<R>
where
    R: Read + Send,
{
    inner: SequentialReaderInner<R>,
    next: Arc<Baton<R>>,
}

enum SequentialReaderInner<R>
where
    R: Read + Send,
{
    MyTurn(R),
    Waiting(Arc<Baton<R>>),
    Empty,
}

pub struct SequentialWriterBuilder<W>
where
    W: Write + Send,
{
    writer: Arc<Mutex<W>>,
    next_trigger: Option<Arc<Baton<()>>>,
}

pub struct SequentialWriter<W>
where
    W: Write + Send,
{
    trigger: Option<Arc<Baton<()>>>,
    writer: Arc<Mutex<W>>,
    on_finish: Arc<Baton<()>>,
}

impl<R: Read + Send> SequentialReaderBuilder<R> {
    pub fn new(reader: R) -> SequentialReaderBuilder<R> {
        SequentialReaderBuilder {
            inner: SequentialReaderBuilderInner::First(reader),
        }
    }
}

impl<W: Write + Send> SequentialWriterBuilder<W> {
    pub fn new(writer: W) -> SequentialWriterBuilder<W> {
        SequentialWriterBuilder {
            writer: Arc::new(Mutex::new(writer)),
            next_trigger: None,
        }
    }
}

impl<R: Read + Send> Iterator for SequentialReaderBuilder<R> {
    type Item = SequentialReader<R>;

    fn next(&mut self) -> Option<SequentialReader<R>> {
        let next = Baton::new();

        let inner = mem::replace(
            &mut self.inner,
            SequentialReaderBuilderInner::NotFirst(next.clone()),
        );

        match inner {
            SequentialReaderBuilderInner::First(reader) => Some(SequentialReader {
                inner: SequentialReaderInner::MyTurn(reader),
                next,
            }),

            SequentialReaderBuilderInner::NotFirst(previous) => Some(SequentialReader {
                inner: SequentialReaderInner::Waiting(previous),
                next,
            }),
        }
    }
}

impl<W: Write + Send> Iterator for SequentialWriterBuilder<W> {
    type Item = SequentialWriter<W>;
    fn next(&mut self) -> Option<SequentialWriter<W>> {
        let on_finish = Baton::new();
        let trigger = mem::replace(&mut self.next_trigger, Some(on_finish.clone()));

        Some(SequentialWriter {
            trigger,
            writer: self.writer.clone(),
            on_finish,
        })
    }
}

impl<R: Read + Send> SequentialReader<R> {
    /// The reader, once the previous request is done with it.
    fn turn(&mut self) -> &mut R {
        if let SequentialReaderInner::Waiting(ref previous) = self.inner {
            let reader = previous.take();
            self.inner = SequentialReaderInner::MyTurn(reader);
        }
        match self.inner {
            SequentialReaderInner::MyTurn(ref mut reader) => reader,
            _ => unreachable!(),
        }
    }
}

impl<R: Read + Send> Read for SequentialReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        self.turn().read(buf)
    }
}

// Lets the request head be read a line at a time from the buffer rather
// than byte by byte through `Read`.
impl<R: BufRead + Send> BufRead for SequentialReader<R> {
    fn fill_buf(&mut self) -> IoResult<&[u8]> {
        self.turn().fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.turn().consume(amt)
    }
}

impl<W: Write + Send> SequentialWriter<W> {
    /// Waits until the previous response is written.
    fn wait_for_turn(&mut self) {
        if let Some(previous) = self.trigger.take() {
            previous.take();
        }
    }

    fn writer(&self) -> MutexGuard<'_, W> {
        // Only one response writes at a time (see `wait_for_turn`), so a
        // poisoned lock means an earlier response failed halfway, which the
        // client sees as a broken response either way.
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<W: Write + Send> Write for SequentialWriter<W> {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        self.wait_for_turn();
        self.writer().write(buf)
    }

    fn flush(&mut self) -> IoResult<()> {
        self.wait_for_turn();
        self.writer().flush()
    }
}

impl<R> Drop for SequentialReader<R>
where
    R: Read + Send,
{
    fn drop(&mut self) {
        let inner = mem::replace(&mut self.inner, SequentialReaderInner::Empty);

        match inner {
            SequentialReaderInner::MyTurn(reader) => self.next.put(reader),
            SequentialReaderInner::Waiting(previous) => self.next.put(previous.take()),
            SequentialReaderInner::Empty => (),
        }
    }
}

impl<W> Drop for SequentialWriter<W>
where
    W: Write + Send,
{
    fn drop(&mut self) {
        self.on_finish.put(());
    }
}

#[cfg(test)]
mod tests {
    use super::{SequentialReaderBuilder, SequentialWriterBuilder};
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};

    #[test]
    fn each_reader_gets_the_stream_after_the_one_before() {
        let mut readers = SequentialReaderBuilder::new(&b"abcdef"[..]);
        let mut first = readers.next().unwrap();
        let mut second = readers.next().unwrap();
        let waiting = std::thread::spawn(move || {
            let mut rest = String::new();
            second.read_to_string(&mut rest).unwrap();
            rest
        });
        let mut head = [0; 2];
        first.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"ab");
        drop(first);
        assert_eq!(waiting.join().unwrap(), "cdef");
    }

    #[test]
    fn responses_are_written_in_request_order() {
        #[derive(Clone)]
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let out = Shared(Arc::new(Mutex::new(Vec::new())));
        let mut writers = SequentialWriterBuilder::new(out.clone());
        let first = writers.next().unwrap();
        let mut second = writers.next().unwrap();
        let later = std::thread::spawn(move || second.write_all(b"2").unwrap());
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut first = first;
        first.write_all(b"1").unwrap();
        drop(first);
        later.join().unwrap();
        assert_eq!(out.0.lock().unwrap().as_slice(), b"12");
    }
}
