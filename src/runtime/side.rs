//! Side services: threads beside the workers that answer the core's queries for parked
//! messages (a name to resolve; later a remote location store, the media relay).
//!
//! Contract:
//! - A worker never blocks on a side service. When the core parks a message
//!   ([`Outcome::Park`](crate::proxy::Outcome::Park)), the worker `try_send`s its query on a
//!   bounded `crossbeam-channel` shared by every worker; a full queue is answered at once as
//!   [`Answer::TimedOut`] (the feature's reply, e.g. 503, goes out).
//! - The side thread calls [`SideService::answer`] (which may block that thread, never a
//!   worker), `try_send`s the answer on the asking worker's own bounded queue and wakes the
//!   worker through its `mio::Waker`; the worker then calls `Proxy::resume`. An answer that
//!   finds the worker's queue full is lost, and the parked message times out.
//! - The side thread stops when every worker has stopped (its question queue disconnects);
//!   [`SideService::answer`] must therefore return within a bounded time.
//! - Nothing here allocates per query: queries and answers are `Copy` values in the
//!   channels' preallocated slots.

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use log::debug;
use mio::Waker;

use crate::proxy::{Answer, Query, Ticket};

/// Answers the core's queries on a thread of its own (a resolver, a store client).
pub trait SideService: Send + 'static {
    /// The answer to `query`; may block this thread for a while. `None`: no answer, the
    /// parked message will time out.
    fn answer(&mut self, query: &Query) -> Option<Answer>;
}

/// A query on its way to the side thread: which worker asked, for which parked message.
#[derive(Clone, Copy, Debug)]
struct Question {
    worker: usize,
    ticket: Ticket,
    query: Query,
}

/// An answer on its way back to the worker that asked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Answered {
    pub(crate) ticket: Ticket,
    pub(crate) answer: Answer,
}

/// One worker's end of the side service: where to ask, and where answers arrive.
pub(crate) struct SideLink {
    worker: usize,
    questions: Sender<Question>,
    answers: Receiver<Answered>,
}

impl SideLink {
    /// Hands `query` to the side thread; `false` when its queue is full (or it stopped).
    pub(crate) fn ask(&self, ticket: Ticket, query: Query) -> bool {
        let question = Question {
            worker: self.worker,
            ticket,
            query,
        };
        match self.questions.try_send(question) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// The next answer that has arrived, if any.
    pub(crate) fn next_answer(&self) -> Option<Answered> {
        self.answers.try_recv().ok()
    }
}

/// The running side thread.
pub(crate) struct SideThread {
    thread: JoinHandle<()>,
}

impl SideThread {
    /// Starts `service` on a thread named `name`; returns it and one link per worker (one per
    /// waker). `queue` bounds the questions in flight, and each worker's answers.
    pub(crate) fn start(
        name: &str,
        mut service: Box<dyn SideService>,
        wakers: &[Arc<Waker>],
        queue: usize,
    ) -> io::Result<(SideThread, Vec<SideLink>)> {
        let (questions, asked) = crossbeam_channel::bounded::<Question>(queue.max(1));
        let (replies, links): (Vec<_>, Vec<_>) = (0..wakers.len())
            .map(|worker| {
                let (reply, answers) = crossbeam_channel::bounded(queue.max(1));
                let link = SideLink {
                    worker,
                    questions: questions.clone(),
                    answers,
                };
                (reply, link)
            })
            .unzip();
        let wakers = wakers.to_vec();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || serve(service.as_mut(), &asked, &replies, &wakers))?;
        Ok((SideThread { thread }, links))
    }

    /// Waits for the thread to end (after every worker has dropped its link).
    pub(crate) fn join(self) {
        let _ = self.thread.join();
    }
}

fn serve(
    service: &mut dyn SideService,
    asked: &Receiver<Question>,
    replies: &[Sender<Answered>],
    wakers: &[Arc<Waker>],
) {
    while let Ok(question) = asked.recv() {
        let Some(answer) = service.answer(&question.query) else {
            continue;
        };
        let answered = Answered {
            ticket: question.ticket,
            answer,
        };
        let worker = question.worker;
        let sent = replies.get(worker).map(|r| r.try_send(answered).is_ok());
        match sent {
            Some(true) => {
                let _ = wakers[worker].wake();
            }
            _ => debug!("side service: worker {worker} cannot take an answer; it will time out"),
        }
    }
}
