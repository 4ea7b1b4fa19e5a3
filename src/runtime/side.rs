//! Side services: threads beside the workers that answer the core's queries for parked
//! messages (a name to resolve, a binding from a remote store, an offer from the media relay).
//!
//! Contract:
//! - A worker never blocks on a side service. When the core parks a message
//!   ([`Outcome::Park`](crate::proxy::Outcome::Park)), the worker `try_send`s its query on
//!   the bounded `crossbeam-channel` of the service that answers that kind of query
//!   ([`Query::kind`]); a full queue, or a kind no service is wired for, is answered at
//!   once as [`Answer::TimedOut`] (the feature's reply, e.g. 503, goes out).
//! - Each service runs on a thread of its own. The simple kind implements
//!   [`SideService::answer`] (one query at a time; it may block that thread, never a worker).
//!   A service that keeps many queries in flight (a resolver with several outstanding DNS
//!   queries, a media-relay client matching replies by cookie) overrides [`SideService::run`]:
//!   it owns its loop, takes [`Question`]s from [`Questions`] and answers each through a
//!   [`Replier`] (cheap to clone, usable from another thread of the service), in any order.
//! - An answer goes on the asking worker's own bounded queue and wakes the worker through its
//!   `mio::Waker`; the worker then calls `Proxy::resume`. An answer that finds the worker's
//!   queue full is lost, and the parked message times out; so is an answer for a message that
//!   has timed out already (its ticket finds nothing).
//! - A service's thread should end when [`Questions`] reports that every worker has stopped
//!   (`recv` returns `None`); it must therefore never wait without a bound.
//! - Queries and answers travel in the channels' preallocated slots: a query kind that fits
//!   inline (a host name) allocates nothing; a kind that carries a body (an SDP offer) boxes it.

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};
use log::debug;
use mio::Waker;

use crate::proxy::{Answer, Query, SideKind, Ticket};

/// Answers the core's queries of one kind on a thread of its own.
pub trait SideService: Send + 'static {
    /// The answer to `query`; may block this thread for a while. `None`: no answer, the
    /// parked message will time out. Used by the default [`SideService::run`]; a service
    /// that overrides `run` need not implement it.
    fn answer(&mut self, _query: &Query) -> Option<Answer> {
        None
    }

    /// The service's loop: by default one question at a time through
    /// [`SideService::answer`], until every worker has stopped.
    fn run(mut self: Box<Self>, questions: Questions) {
        let replier = questions.replier();
        while let Some(question) = questions.recv() {
            if let Some(answer) = self.answer(question.query()) {
                replier.reply(question.asker(), answer);
            }
        }
    }
}

/// Who asked: the worker and its parked message. Copy it to answer later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asker {
    worker: usize,
    ticket: Ticket,
}

/// A query on its way to a side thread, with who asked.
#[derive(Clone, Debug)]
pub struct Question {
    asker: Asker,
    query: Query,
}

impl Question {
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// The query itself, for a service that keeps it while the answer is on its way.
    pub fn into_query(self) -> Query {
        self.query
    }

    pub fn asker(&self) -> Asker {
        self.asker
    }
}

/// An answer on its way back to the worker that asked.
#[derive(Clone, Debug)]
pub(crate) struct Answered {
    pub(crate) ticket: Ticket,
    pub(crate) answer: Answer,
}

/// A side service's end of its question queue.
pub struct Questions {
    asked: Receiver<Question>,
    replier: Replier,
}

impl Questions {
    /// The next question; `None` once every worker has stopped.
    pub fn recv(&self) -> Option<Question> {
        self.asked.recv().ok()
    }

    /// The next question within `timeout`: `Ok(None)` when none came, `Err(())` once every
    /// worker has stopped.
    #[allow(clippy::result_unit_err)]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Question>, ()> {
        match self.asked.recv_timeout(timeout) {
            Ok(question) => Ok(Some(question)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(()),
        }
    }

    /// A question waiting now, without waiting: `Ok(None)` when there is none, `Err(())`
    /// once every worker has stopped.
    #[allow(clippy::result_unit_err)]
    pub fn try_recv(&self) -> Result<Option<Question>, ()> {
        match self.asked.try_recv() {
            Ok(question) => Ok(Some(question)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(()),
        }
    }

    /// Where answers go; clone it for another thread of the service.
    pub fn replier(&self) -> Replier {
        self.replier.clone()
    }
}

/// Sends answers to the workers that asked, and wakes them.
#[derive(Clone)]
pub struct Replier {
    replies: Arc<[Sender<Answered>]>,
    wakers: Arc<[Arc<Waker>]>,
}

impl Replier {
    /// Hands `answer` to the worker of `asker`; `false` when its queue is full (the parked
    /// message will time out) or the worker has stopped.
    pub fn reply(&self, asker: Asker, answer: Answer) -> bool {
        let worker = asker.worker;
        let answered = Answered {
            ticket: asker.ticket,
            answer,
        };
        let sent = self
            .replies
            .get(worker)
            .map(|r| r.try_send(answered).is_ok());
        match sent {
            Some(true) => {
                let _ = self.wakers[worker].wake();
                true
            }
            _ => {
                debug!("side service: worker {worker} cannot take an answer; it will time out");
                false
            }
        }
    }
}

/// One worker's end of one side service: where to ask, and where answers arrive.
pub(crate) struct SideLink {
    worker: usize,
    questions: Sender<Question>,
    answers: Receiver<Answered>,
}

impl SideLink {
    /// Hands `query` to the side thread; `false` when its queue is full (or it stopped).
    pub(crate) fn ask(&self, ticket: Ticket, query: Query) -> bool {
        let question = Question {
            asker: Asker {
                worker: self.worker,
                ticket,
            },
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

/// One worker's links to every side service that is wired, by [`SideKind`].
#[derive(Default)]
pub(crate) struct SideLinks {
    links: Vec<(SideKind, SideLink)>,
}

impl SideLinks {
    /// Hands `query` to the service for its kind; `false` when none is wired or its queue is
    /// full.
    pub(crate) fn ask(&self, ticket: Ticket, query: Query) -> bool {
        let service = query.kind();
        match self.links.iter().find(|(s, _)| *s == service) {
            Some((_, link)) => link.ask(ticket, query),
            None => false,
        }
    }

    /// The next answer from any service, if any.
    pub(crate) fn next_answer(&self) -> Option<Answered> {
        self.links.iter().find_map(|(_, link)| link.next_answer())
    }

    fn add(&mut self, service: SideKind, link: SideLink) {
        self.links.push((service, link));
    }
}

/// The running side threads.
#[derive(Default)]
pub(crate) struct SideThreads {
    threads: Vec<JoinHandle<()>>,
}

impl SideThreads {
    /// Starts each service of `services` on a thread named after its kind; returns them and
    /// each worker's links (one worker per waker). `queue` bounds the questions in flight per
    /// service, and each worker's answers per service.
    pub(crate) fn start(
        services: Vec<(SideKind, Box<dyn SideService>)>,
        wakers: &[Arc<Waker>],
        queue: usize,
    ) -> io::Result<(SideThreads, Vec<SideLinks>)> {
        let mut threads = SideThreads::default();
        let mut links: Vec<SideLinks> = (0..wakers.len()).map(|_| SideLinks::default()).collect();
        for (service, side) in services {
            let (questions, asked) = crossbeam_channel::bounded::<Question>(queue.max(1));
            let mut replies = Vec::with_capacity(wakers.len());
            for (worker, worker_links) in links.iter_mut().enumerate() {
                let (reply, answers) = crossbeam_channel::bounded(queue.max(1));
                replies.push(reply);
                let link = SideLink {
                    worker,
                    questions: questions.clone(),
                    answers,
                };
                worker_links.add(service, link);
            }
            let questions = Questions {
                asked,
                replier: Replier {
                    replies: replies.into(),
                    wakers: wakers.to_vec().into(),
                },
            };
            let thread = std::thread::Builder::new()
                .name(format!("ferrovia-{}", service.name()))
                .spawn(move || side.run(questions))?;
            threads.threads.push(thread);
        }
        Ok((threads, links))
    }

    /// Waits for the threads to end (after every worker has dropped its links).
    pub(crate) fn join(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}
