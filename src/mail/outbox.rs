//! The outbox: one thread (`satchel-mail`) that sends queued mails, so a
//! request never waits for an SMTP round trip. The queue is bounded: when
//! it is full a mail is refused at once (logged, reported to its callback)
//! rather than making the caller wait. Send failures are logged and
//! reported to the mail's callback; nothing is retried.
//!
//! Domain-free like the rest of `mail`: a queued mail carries its own
//! [`SmtpConfig`], so the outbox knows nothing of settings, records or
//! templates. It must never log a credential or a message body.

use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

use super::{send, Message, SmtpConfig};

/// Mails waiting to be sent before new ones are refused.
pub const QUEUE_CAPACITY: usize = 512;

/// Called once with whether the mail reached the SMTP server.
pub type Delivered = Box<dyn FnOnce(bool) + Send>;

/// One mail to send.
pub struct Outgoing {
    pub config: SmtpConfig,
    pub message: Message,
    /// Runs on the outbox thread after the attempt (or at once on refusal).
    pub on_done: Option<Delivered>,
}

/// The handle mails are queued through. Dropping it lets the thread send
/// what is already queued and stop; it is not joined, so a slow SMTP
/// server cannot hold up shutdown beyond the process exit.
pub struct Outbox {
    queue: Sender<Outgoing>,
    _thread: JoinHandle<()>,
}

impl Outbox {
    /// Starts the outbox thread.
    pub fn start() -> std::io::Result<Outbox> {
        Outbox::with_sender(QUEUE_CAPACITY, |config, message| {
            send(config, message).map_err(|e| e.to_string())
        })
    }

    /// An outbox that hands each mail to `deliver` instead of SMTP (tests).
    pub fn with_sender<F>(capacity: usize, deliver: F) -> std::io::Result<Outbox>
    where
        F: Fn(&SmtpConfig, &Message) -> Result<(), String> + Send + 'static,
    {
        let (queue, pending) = bounded(capacity.max(1));
        let thread = std::thread::Builder::new()
            .name("satchel-mail".into())
            .spawn(move || send_loop(&pending, deliver))?;
        Ok(Outbox {
            queue,
            _thread: thread,
        })
    }

    /// Queues a mail; refuses it at once when the queue is full.
    pub fn queue(&self, mail: Outgoing) {
        match self.queue.try_send(mail) {
            Ok(()) => {}
            Err(TrySendError::Full(mail)) | Err(TrySendError::Disconnected(mail)) => {
                log::error!(
                    "mail outbox full or stopped: the mail {:?} to {} was not sent",
                    mail.message.subject,
                    recipients(&mail.message)
                );
                if let Some(done) = mail.on_done {
                    done(false);
                }
            }
        }
    }
}

fn send_loop<F>(pending: &Receiver<Outgoing>, deliver: F)
where
    F: Fn(&SmtpConfig, &Message) -> Result<(), String>,
{
    for mail in pending.iter() {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            deliver(&mail.config, &mail.message)
        }));
        let sent = match outcome {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                log::error!(
                    "sending the mail {:?} to {} failed: {e}",
                    mail.message.subject,
                    recipients(&mail.message)
                );
                false
            }
            Err(_) => {
                log::error!("sending a mail panicked");
                false
            }
        };
        if let Some(done) = mail.on_done {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| done(sent))).is_err() {
                log::error!("a mail callback panicked");
            }
        }
    }
}

fn recipients(message: &Message) -> String {
    let to: Vec<&str> = message.to.iter().map(|a| a.email.as_str()).collect();
    to.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::Address;
    use std::sync::mpsc;
    use std::time::Duration;

    fn mail(to: &str, on_done: Option<Delivered>) -> Outgoing {
        Outgoing {
            config: SmtpConfig::default(),
            message: Message {
                to: vec![Address::new(to)],
                subject: "s".into(),
                text: "t".into(),
                ..Message::default()
            },
            on_done,
        }
    }

    #[test]
    fn queued_mails_are_sent_in_order_and_reported() {
        let (sent_tx, sent_rx) = mpsc::channel();
        let outbox = Outbox::with_sender(8, move |_, m| {
            let to = m.to[0].email.clone();
            sent_tx.send(to.clone()).map_err(|e| e.to_string())?;
            if to == "bad@x.y" {
                Err("refused".into())
            } else {
                Ok(())
            }
        })
        .unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        for to in ["a@x.y", "bad@x.y"] {
            let done_tx = done_tx.clone();
            outbox.queue(mail(
                to,
                Some(Box::new(move |ok| done_tx.send(ok).unwrap())),
            ));
        }
        let wait = Duration::from_secs(5);
        assert_eq!(sent_rx.recv_timeout(wait).unwrap(), "a@x.y");
        assert_eq!(sent_rx.recv_timeout(wait).unwrap(), "bad@x.y");
        assert!(done_rx.recv_timeout(wait).unwrap());
        assert!(!done_rx.recv_timeout(wait).unwrap());
    }

    #[test]
    fn a_full_queue_refuses_at_once_instead_of_blocking() {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = std::sync::Mutex::new(release_rx);
        let outbox = Outbox::with_sender(1, move |_, _| {
            let _ = release_rx.lock().unwrap().recv();
            Ok(())
        })
        .unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        // The first is taken by the thread (blocked), the second fills the
        // queue; eventually one more is refused.
        let mut refused = false;
        for _ in 0..10 {
            let done_tx = done_tx.clone();
            outbox.queue(mail(
                "a@x.y",
                Some(Box::new(move |ok| done_tx.send(ok).unwrap())),
            ));
            if let Ok(false) = done_rx.try_recv() {
                refused = true;
                break;
            }
        }
        assert!(refused, "a full outbox must refuse without waiting");
        drop(release_tx);
    }
}
