//! An adaptive batching window for the DataLoaders (issue 16).
//!
//! A DataLoader waits a short window (`RENKEI_BATCH_WINDOW_MICROS`, 1 ms by
//! default) for other loads to join before it queries: under load, the
//! summaries of 32 concurrent requests become one statement. But a request
//! alone on the hub pays that window at every dependent level of its query
//! (the access check, then the summary, then the care team's organisations
//! …) and gains nothing from it: at concurrency 1 the fixed window tripled
//! the median. So each loader is held twice — with the window and without —
//! and a load takes the one that fits the moment: no wait while the
//! operation asking is the only one executing in the process ([`InFlight`]),
//! the window as soon as another is. The answer is the same either way; only
//! the grouping of statements changes.
//!
//! "No wait" must still batch a level: the resolvers of one level (every
//! patient of a list asking for its summary) enqueue their keys in one poll
//! of the operation's future, which then returns `Pending` to wait for
//! them. So a load made alone waits, instead of a clock, for that moment —
//! the operation going idle ([`InFlight::went_idle`], signalled by the
//! extension that counts operations) — and then takes every key enqueued
//! in the pass: one statement per level, as with the window, without
//! waiting a millisecond for requests that are not coming. (Never longer
//! than the window, should the signal not come.)

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_graphql::Response;
use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};

/// How many GraphQL operations are executing in this process (queries,
/// mutations, and the hub's own operations — pages, FHIR — which run
/// through the same schema).
#[derive(Clone)]
pub struct InFlight(Arc<State>);

#[derive(Default)]
struct State {
    /// Off: every load waits the window (`RENKEI_BATCH_WINDOW_ADAPTIVE=off`).
    adaptive: bool,
    operations: AtomicUsize,
    /// Counts the times an operation's future returned `Pending`.
    idle_epoch: AtomicU64,
    /// Batches waiting for an operation to go idle: only then is there
    /// anyone to wake (under load, none — and `notify_waiters` takes a lock).
    waiting: AtomicUsize,
    idle: tokio::sync::Notify,
}

impl InFlight {
    pub fn new(adaptive: bool) -> Self {
        InFlight(Arc::new(State {
            adaptive,
            ..State::default()
        }))
    }

    /// Counts an operation until the guard is dropped (also when the
    /// operation's future is dropped half-way: a client went away).
    pub fn enter(&self) -> InFlightGuard {
        self.0.operations.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self.clone())
    }

    fn count(&self) -> usize {
        self.0.operations.load(Ordering::SeqCst)
    }

    /// Whether an operation other than the caller's is executing. A load
    /// made outside any operation (authentication, before the request's
    /// operation starts) counts itself as alone when none is.
    fn others(&self) -> bool {
        !self.0.adaptive || self.count() > 1
    }

    /// An operation's future returned `Pending`: the keys its resolvers
    /// had to ask for in that pass are all enqueued.
    fn went_idle(&self) {
        self.0.idle_epoch.fetch_add(1, Ordering::SeqCst);
        if self.0.waiting.load(Ordering::SeqCst) > 0 {
            self.0.idle.notify_waiters();
        }
    }

    fn epoch(&self) -> u64 {
        self.0.idle_epoch.load(Ordering::SeqCst)
    }

    /// Completes once an operation went idle after `epoch`.
    async fn idle_after(&self, epoch: u64) {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.0.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.0.waiting);
        // Counted before the epoch is read: an operation going idle after
        // the read sees the count and wakes this waiter.
        loop {
            let notified = self.0.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.epoch() > epoch {
                return;
            }
            notified.await;
        }
    }
}

pub struct InFlightGuard(InFlight);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.0.operations.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An operation's future, telling [`InFlight`] each time it waits.
struct SignalIdle<'a> {
    inner: Pin<Box<dyn Future<Output = Response> + Send + 'a>>,
    in_flight: InFlight,
}

impl Future for SignalIdle<'_> {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let polled = self.inner.as_mut().poll(cx);
        if polled.is_pending() {
            self.in_flight.went_idle();
        }
        polled
    }
}

/// The schema extension that counts executing operations.
pub struct CountOperations(pub InFlight);

impl ExtensionFactory for CountOperations {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CountOperationsExtension(self.0.clone()))
    }
}

struct CountOperationsExtension(InFlight);

#[async_graphql::async_trait::async_trait]
impl Extension for CountOperationsExtension {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let _counted = self.0.enter();
        SignalIdle {
            inner: Box::pin(next.run(ctx, operation_name)),
            in_flight: self.0.clone(),
        }
        .await
    }
}

/// A loader shared by two DataLoaders, one with the window and one without.
pub struct Shared<L>(Arc<L>);

impl<K, L> Loader<K> for Shared<L>
where
    K: Send + Sync + Hash + Eq + Clone + 'static,
    L: Loader<K>,
{
    type Value = L::Value;
    type Error = L::Error;

    async fn load(&self, keys: &[K]) -> Result<HashMap<K, Self::Value>, Self::Error> {
        self.0.load(keys).await
    }
}

/// A DataLoader whose batching window adapts to the load (see the module).
pub struct Adaptive<L> {
    windowed: DataLoader<Shared<L>>,
    at_once: DataLoader<Shared<L>>,
    in_flight: InFlight,
}

impl<L: Send + Sync + 'static> Adaptive<L> {
    pub fn new(loader: L, window: Duration, in_flight: InFlight) -> Self {
        let loader = Arc::new(loader);
        let signal = in_flight.clone();
        // The batch's task, spawned by the first load of a batch while the
        // operation asking is being polled: it takes the keys once that
        // poll has ended (see the module).
        let after_the_pass = move |batch: futures_util::future::BoxFuture<'static, ()>| {
            let (signal, epoch) = (signal.clone(), signal.epoch());
            let in_operation = signal.count() > 0;
            tokio::spawn(async move {
                if in_operation {
                    let _ = tokio::time::timeout(window, signal.idle_after(epoch)).await;
                }
                batch.await;
            });
        };
        Adaptive {
            windowed: DataLoader::new(Shared(loader.clone()), tokio::spawn).delay(window),
            at_once: DataLoader::new(Shared(loader), after_the_pass).delay(Duration::ZERO),
            in_flight,
        }
    }

    fn now(&self) -> &DataLoader<Shared<L>> {
        if self.in_flight.others() {
            &self.windowed
        } else {
            &self.at_once
        }
    }

    pub async fn load_one<K>(&self, key: K) -> Result<Option<L::Value>, L::Error>
    where
        K: Send + Sync + Hash + Eq + Clone + 'static,
        L: Loader<K>,
    {
        self.now().load_one(key).await
    }

    pub async fn load_many<K, I>(&self, keys: I) -> Result<HashMap<K, L::Value>, L::Error>
    where
        K: Send + Sync + Hash + Eq + Clone + 'static,
        I: IntoIterator<Item = K>,
        L: Loader<K>,
    {
        self.now().load_many(keys).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records the batches it was asked for.
    #[derive(Default, Clone)]
    struct Batches(Arc<Mutex<Vec<Vec<u32>>>>);

    impl Loader<u32> for Batches {
        type Value = u32;
        type Error = std::convert::Infallible;

        async fn load(&self, keys: &[u32]) -> Result<HashMap<u32, u32>, Self::Error> {
            let mut sorted = keys.to_vec();
            sorted.sort();
            self.0.lock().unwrap().push(sorted);
            Ok(keys.iter().map(|k| (*k, k * 10)).collect())
        }
    }

    #[tokio::test]
    async fn alone_a_load_does_not_wait_and_with_company_it_waits_for_the_others() {
        let batches = Batches::default();
        let in_flight = InFlight::new(true);
        let window = Duration::from_millis(200);
        let loader = Adaptive::new(batches.clone(), window, in_flight.clone());

        // Alone (this operation counted): the keys of one pass of the
        // operation are taken together as soon as it waits — no window.
        let me = in_flight.enter();
        let started = std::time::Instant::now();
        let operation = SignalIdle {
            inner: Box::pin(async {
                let (a, b) = tokio::join!(loader.load_one(1), loader.load_one(4));
                assert_eq!((a.unwrap(), b.unwrap()), (Some(10), Some(40)));
                Response::default()
            }),
            in_flight: in_flight.clone(),
        };
        operation.await;
        assert!(started.elapsed() < window / 2, "{:?}", started.elapsed());

        // With another operation executing: loads arriving within the
        // window become one batch.
        let other = in_flight.enter();
        let (a, b) = tokio::join!(loader.load_one(2), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            loader.load_one(3).await
        });
        assert_eq!((a.unwrap(), b.unwrap()), (Some(20), Some(30)));
        assert_eq!(
            batches.0.lock().unwrap().clone(),
            vec![vec![1, 4], vec![2, 3]]
        );
        drop(other);
        drop(me);
        assert_eq!(in_flight.count(), 0);
    }
}
