//! The one gate every Argon2 hash and verification goes through (issue 9 item 2): passwords at
//! sign-in (all pages, console, device login), password set and change, one-time passcodes sent
//! and checked. Argon2 is slow and memory-hungry on purpose (19 MiB a hash), so a burst of
//! requests must neither queue without bound nor run more hashes at once than there are cores:
//! at most `workers` hashes run, at most `queue` more wait, and anything beyond is refused at
//! once with [`HashingError::Busy`].

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Waiting hashes per worker by default: a short burst of sign-ins queues, a flood is refused.
pub const DEFAULT_QUEUE_PER_WORKER: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    /// Every worker is busy and the queue is full; nothing was hashed.
    #[error("too many password and code checks are in progress")]
    Busy,
    #[error("hashing failed: {0}")]
    Failed(String),
}

/// A process-wide bounded executor for Argon2 work; clones share the bounds.
#[derive(Debug, Clone)]
pub struct HashLimiter {
    /// One permit per hash that may run now.
    workers: Arc<Semaphore>,
    /// One permit per hash admitted at all (running or waiting for a worker).
    admitted: Arc<Semaphore>,
}

impl Default for HashLimiter {
    /// As many workers as the machine has cores, each with [`DEFAULT_QUEUE_PER_WORKER`] waiting.
    fn default() -> Self {
        HashLimiter::configured(None, None)
    }
}

impl HashLimiter {
    /// `workers` (default: the cores) and `queue` (default: [`DEFAULT_QUEUE_PER_WORKER`] per worker).
    pub fn configured(workers: Option<usize>, queue: Option<usize>) -> Self {
        let workers = workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)).max(1);
        HashLimiter::new(workers, queue.unwrap_or(workers * DEFAULT_QUEUE_PER_WORKER))
    }

    /// `workers` hashes run at once (at least one), `queue` more may wait for them.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        HashLimiter { workers: Arc::new(Semaphore::new(workers)), admitted: Arc::new(Semaphore::new(workers + queue)) }
    }

    /// A place among the running and waiting hashes, or [`HashingError::Busy`] at once. Taking
    /// it before other work (the sign-in limits) lets a flood be refused before it costs anything.
    pub fn admit(&self) -> Result<Admission, HashingError> {
        let admitted = self.admitted.clone().try_acquire_owned().map_err(|_| HashingError::Busy)?;
        Ok(Admission { admitted, workers: self.workers.clone() })
    }

    /// Runs `job` on a blocking thread once a worker is free, or refuses at once when the queue
    /// is full (admission is taken before the first await, so a caller that gets `Busy` never
    /// waited).
    pub async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, HashingError> {
        self.admit()?.run(job).await
    }

    /// An Argon2id PHC string of `secret` with a fresh salt.
    pub async fn hash(&self, secret: String) -> Result<String, HashingError> {
        self.admit()?.hash(secret).await
    }

    /// Whether `secret` matches the PHC string `stored` (a malformed one matches nothing).
    pub async fn verify(&self, secret: String, stored: String) -> Result<bool, HashingError> {
        self.admit()?.verify(secret, stored).await
    }
}

/// An admitted hash: it waits for a worker (the queue is bounded by admissions), then runs.
#[derive(Debug)]
pub struct Admission {
    admitted: OwnedSemaphorePermit,
    workers: Arc<Semaphore>,
}

impl Admission {
    pub async fn run<T: Send + 'static>(self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, HashingError> {
        let worker = self.workers.acquire_owned().await.map_err(|e| HashingError::Failed(e.to_string()))?;
        let admitted = self.admitted;
        let outcome = tokio::task::spawn_blocking(move || {
            let result = job();
            drop((worker, admitted));
            result
        })
        .await;
        outcome.map_err(|e| HashingError::Failed(format!("hashing task: {e}")))
    }

    pub async fn hash(self, secret: String) -> Result<String, HashingError> {
        self.run(move || {
            let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
            argon2().hash_password(secret.as_bytes(), &salt).map(|hash| hash.to_string())
        })
        .await?
        .map_err(|e| HashingError::Failed(e.to_string()))
    }

    pub async fn verify(self, secret: String, stored: String) -> Result<bool, HashingError> {
        self.run(move || PasswordHash::new(&stored).is_ok_and(|hash| argon2().verify_password(secret.as_bytes(), &hash).is_ok())).await
    }
}

/// Argon2id with OWASP's recommended cost (19 MiB, 2 passes), for passwords and for one-time
/// passcodes alike (an 8-digit code has too little entropy for a fast hash).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts a job that holds a worker until `release` is sent; returns once it runs.
    async fn hold_a_worker(limiter: &HashLimiter) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<Result<(), HashingError>>) {
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let held = limiter.clone();
        let job = tokio::spawn(async move {
            held.run(move || {
                let _ = started_tx.send(());
                let _ = release_rx.recv();
            })
            .await
        });
        started_rx.await.expect("the held job runs");
        (release_tx, job)
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once_and_admits_again_when_a_worker_frees() {
        let limiter = HashLimiter::new(1, 0);
        let (release, held) = hold_a_worker(&limiter).await;
        assert!(matches!(limiter.hash("Passw0rd!".into()).await, Err(HashingError::Busy)));
        assert!(matches!(limiter.verify("x".into(), "y".into()).await, Err(HashingError::Busy)));
        release.send(()).unwrap();
        held.await.unwrap().unwrap();
        let hash = limiter.hash("Passw0rd!".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
    }

    #[tokio::test]
    async fn waiters_up_to_the_queue_length_wait_for_a_worker_and_one_more_is_refused() {
        let limiter = HashLimiter::new(1, 1);
        let (release, held) = hold_a_worker(&limiter).await;
        // The queued job is admitted when first polled; it cannot finish while the worker is held.
        let queued = {
            let limiter = limiter.clone();
            let mut job = Box::pin(async move { limiter.run(|| 7).await });
            assert!(futures::poll!(job.as_mut()).is_pending());
            job
        };
        assert!(matches!(limiter.run(|| 8).await, Err(HashingError::Busy)));
        release.send(()).unwrap();
        held.await.unwrap().unwrap();
        assert_eq!(queued.await.unwrap(), 7);
        assert_eq!(limiter.run(|| 9).await.unwrap(), 9);
    }

    #[tokio::test]
    async fn hashes_verify_against_their_secret_only_and_are_salted() {
        let limiter = HashLimiter::new(2, 0);
        let hash = limiter.hash("12345678".into()).await.unwrap();
        assert!(!hash.contains("12345678"));
        assert!(limiter.verify("12345678".into(), hash.clone()).await.unwrap());
        assert!(!limiter.verify("12345679".into(), hash.clone()).await.unwrap());
        assert!(!limiter.verify("12345678".into(), "not a PHC string".into()).await.unwrap());
        assert_ne!(hash, limiter.hash("12345678".into()).await.unwrap());
    }
}
