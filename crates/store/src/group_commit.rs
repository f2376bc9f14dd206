//! Group commit for the SQLite file store: one task owns the single writer connection and runs
//! the write transactions queued meanwhile inside one database transaction, each in a savepoint
//! of its own, then commits them with one fsync. A write is answered only after that commit, so
//! an acknowledged write is as durable as with a commit of its own; a write that fails (or
//! answers early without writing) is undone to its savepoint and leaves the others alone.
//!
//! The queue and the task live in this process only: SQLite has one writer process anyway
//! (replicas share PostgreSQL, which commits each transaction itself).

use std::any::Any;
use std::collections::VecDeque;
use std::ops::DerefMut;
use std::panic::AssertUnwindSafe;

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::{mpsc, oneshot};

use crate::{StoreError, StoreResult};

/// How a write transaction ends: its changes kept, or undone (an answer that writes nothing,
/// like a guard that found the row already changed).
pub(crate) enum Commit<T> {
    Keep(T),
    Discard(T),
}

/// Runs one SQL statement without parameters on the connection (`BEGIN IMMEDIATE`, `SAVEPOINT`, ...).
pub(crate) type Exec<C> = for<'c> fn(&'c mut C, &'static str) -> BoxFuture<'c, StoreResult<()>>;

type Erased = Box<dyn Any + Send>;
type Work<C> = Box<dyn for<'c> FnOnce(&'c mut C) -> BoxFuture<'c, StoreResult<Commit<Erased>>> + Send>;

struct Job<C> {
    work: Work<C>,
    reply: oneshot::Sender<StoreResult<Erased>>,
}

/// Writes waiting beyond this many start the next group, so one commit's latency stays bounded.
const MAX_GROUP: usize = 64;

pub(crate) struct GroupWriter<C> {
    jobs: mpsc::UnboundedSender<Job<C>>,
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the database writer has stopped".into())
}

impl<C: Send + 'static> GroupWriter<C> {
    /// Takes the writer connection for good and starts the task that commits groups on it.
    pub(crate) fn start(connection: impl DerefMut<Target = C> + Send + 'static, exec: Exec<C>) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(write_groups(connection, exec, queue));
        GroupWriter { jobs }
    }

    /// Runs `work` as one write transaction of the next group; its value once that group is committed.
    pub(crate) async fn run<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut C) -> BoxFuture<'c, StoreResult<Commit<T>>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let work: Work<C> = Box::new(move |connection| {
            let done = work(connection);
            Box::pin(async move {
                Ok(match done.await? {
                    Commit::Keep(value) => Commit::Keep(Box::new(value) as Erased),
                    Commit::Discard(value) => Commit::Discard(Box::new(value) as Erased),
                })
            })
        });
        self.jobs.send(Job { work, reply }).map_err(|_| stopped())?;
        let value = answer.await.map_err(|_| stopped())??;
        value.downcast::<T>().map(|value| *value).map_err(|_| StoreError::Database("a grouped write answered with another type".into()))
    }
}

async fn write_groups<C>(mut connection: impl DerefMut<Target = C>, exec: Exec<C>, mut queue: mpsc::UnboundedReceiver<Job<C>>) {
    let mut waiting = VecDeque::new();
    while let Some(first) = queue.recv().await {
        waiting.push_back(first);
        while waiting.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => waiting.push_back(job),
                Err(_) => break,
            }
        }
        while !waiting.is_empty() {
            commit_group(&mut *connection, exec, &mut waiting).await;
        }
    }
}

/// Runs waiting writes in one transaction until none is left or one fails, then commits. A
/// failed write ends its group: some failures (I/O, a full disk) make SQLite roll the whole
/// transaction back, and the writes after it must not run outside one.
///
/// Every write of the group is answered after the commit, also one that failed or wrote
/// nothing: its answer may rest on another write of the group (a UNIQUE conflict with it), and
/// a caller that then reads (from the read connections) must find that write committed.
async fn commit_group<C>(connection: &mut C, exec: Exec<C>, waiting: &mut VecDeque<Job<C>>) {
    if let Err(error) = exec(connection, "BEGIN IMMEDIATE").await {
        for job in waiting.drain(..) {
            let _ = job.reply.send(Err(copy(&error)));
        }
        return;
    }
    let mut answers = Vec::with_capacity(waiting.len());
    while let Some(job) = waiting.pop_front() {
        if let Err(error) = exec(connection, "SAVEPOINT grouped_write").await {
            answers.push((job.reply, Err(error)));
            break;
        }
        // A panicking write must not take the writer (and every later write) down with it.
        let outcome = AssertUnwindSafe((job.work)(connection)).catch_unwind().await.unwrap_or_else(|_| {
            tracing::error!("a write transaction panicked; undone");
            Err(StoreError::Database("a write transaction panicked".into()))
        });
        let answer = match outcome {
            Ok(Commit::Keep(value)) => match exec(connection, "RELEASE grouped_write").await {
                Ok(()) => Ok(value),
                Err(error) => {
                    undo(connection, exec).await;
                    Err(error)
                }
            },
            Ok(Commit::Discard(value)) => {
                undo(connection, exec).await;
                Ok(value)
            }
            Err(error) => {
                undo(connection, exec).await;
                Err(error)
            }
        };
        let failed = answer.is_err();
        answers.push((job.reply, answer));
        if failed {
            break;
        }
    }
    let started = std::time::Instant::now();
    let committed = exec(connection, "COMMIT").await;
    tracing::trace!(writes = answers.len(), commit_us = started.elapsed().as_micros() as u64, "group committed");
    match committed {
        Ok(()) => {
            for (reply, answer) in answers {
                let _ = reply.send(answer);
            }
        }
        Err(error) => {
            // Nothing of the group stands; any answer may rest on what was rolled back.
            let _ = exec(connection, "ROLLBACK").await;
            for (reply, _) in answers {
                let _ = reply.send(Err(copy(&error)));
            }
        }
    }
}

async fn undo<C>(connection: &mut C, exec: Exec<C>) {
    let _ = exec(connection, "ROLLBACK TO grouped_write").await;
    let _ = exec(connection, "RELEASE grouped_write").await;
}

/// The same failure for every write of a group.
fn copy(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(detail) => StoreError::Unavailable(detail.clone()),
        other => StoreError::Database(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::sync::Semaphore;

    use super::*;

    /// A connection that logs what the writer runs and holds each COMMIT until the test lets it go.
    struct Fake {
        log: Arc<Mutex<Vec<&'static str>>>,
        commits: Arc<Semaphore>,
    }

    fn exec<'c>(fake: &'c mut Fake, sql: &'static str) -> BoxFuture<'c, StoreResult<()>> {
        Box::pin(async move {
            if sql == "COMMIT" {
                fake.commits.acquire().await.expect("open").forget();
            }
            fake.log.lock().expect("log").push(sql);
            Ok(())
        })
    }

    fn write(writer: &Arc<GroupWriter<Fake>>, outcome: StoreResult<Commit<u32>>) -> tokio::task::JoinHandle<StoreResult<u32>> {
        let writer = writer.clone();
        tokio::spawn(async move {
            writer
                .run(move |fake: &mut Fake| {
                    fake.log.lock().expect("log").push("work");
                    Box::pin(async move { outcome })
                })
                .await
        })
    }

    #[tokio::test(flavor = "current_thread")]
    async fn every_answer_waits_for_its_groups_commit_and_a_failure_ends_the_group() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let commits = Arc::new(Semaphore::new(0));
        let writer = Arc::new(GroupWriter::start(Box::new(Fake { log: log.clone(), commits: commits.clone() }), exec));
        let kept = write(&writer, Ok(Commit::Keep(1)));
        let failed = write(&writer, Err(StoreError::Conflict(crate::Conflict::Duplicate)));
        let discarded = write(&writer, Ok(Commit::Discard(3)));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!kept.is_finished() && !failed.is_finished() && !discarded.is_finished(), "no answer before the commit");
        assert_eq!(
            *log.lock().unwrap(),
            ["BEGIN IMMEDIATE", "SAVEPOINT grouped_write", "work", "RELEASE grouped_write", "SAVEPOINT grouped_write", "work"]
                .iter()
                .chain(&["ROLLBACK TO grouped_write", "RELEASE grouped_write"])
                .copied()
                .collect::<Vec<_>>(),
            "the failed write is undone and ends the group"
        );
        commits.add_permits(2);
        assert_eq!(kept.await.unwrap().unwrap(), 1);
        assert!(matches!(failed.await.unwrap(), Err(StoreError::Conflict(_))));
        assert_eq!(discarded.await.unwrap().unwrap(), 3);
        let log = log.lock().unwrap();
        assert_eq!(
            log[8..],
            [
                "COMMIT",
                "BEGIN IMMEDIATE",
                "SAVEPOINT grouped_write",
                "work",
                "ROLLBACK TO grouped_write",
                "RELEASE grouped_write",
                "COMMIT"
            ],
            "the discarded write ran in the next group and left nothing"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_commit_fails_every_write_of_the_group() {
        fn failing<'c>(_: &'c mut (), sql: &'static str) -> BoxFuture<'c, StoreResult<()>> {
            Box::pin(async move {
                match sql {
                    "COMMIT" => Err(StoreError::Unavailable("disk full".into())),
                    _ => Ok(()),
                }
            })
        }
        let writer = Arc::new(GroupWriter::start(Box::new(()), failing));
        let answers = futures::future::join_all((0..3).map(|n| {
            let writer = writer.clone();
            tokio::spawn(async move { writer.run(move |_: &mut ()| Box::pin(async move { Ok(Commit::Keep(n)) })).await })
        }))
        .await;
        for answer in answers {
            assert!(matches!(answer.unwrap(), Err(StoreError::Unavailable(detail)) if detail == "disk full"));
        }
    }
}
