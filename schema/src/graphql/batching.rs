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
//!
//! An operation also goes idle while one of its loaders' batches is being
//! queried, and a resolver woken by that batch may then ask another loader
//! for a key that belongs to a batch already waiting — its siblings of the
//! same level, woken by a different batch, came earlier. Taking the waiting
//! batch at the first idle moment would split that level into two
//! statements, more or fewer depending on which query returned first. So a
//! batch waits until no batch is being queried and the operation has been
//! polled to its end after the last one returned (the poll after the one
//! under way, if the results came during a poll): every resolver its
//! results woke has then enqueued its keys. That is the level-by-level dispatch of a DataLoader
//! without a clock, and the statements an operation costs alone no longer
//! depend on timing.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
    /// Counts the starts and the ends of the polls of operations' futures:
    /// odd while one is being polled, even when none is (one at a time —
    /// alone, as the adaptive loads are). It grows by two each time an
    /// operation went idle.
    idle_epoch: AtomicU64,
    /// Batches waiting for an operation to go idle: only then is there
    /// anyone to wake (under load, none — and `notify_waiters` takes a lock).
    waiting: AtomicUsize,
    idle: tokio::sync::Notify,
    /// Batches taken and not yet returned (of every loader, with or without
    /// the window): counted from the moment a waiting batch is let go, not
    /// only once its query starts — the DataLoader's own (zero) delay
    /// passes in between.
    busy: AtomicUsize,
    /// The `idle_epoch` an operation must reach to have been polled once
    /// more after the last batch's query returned: its resolvers woken by
    /// the results have then enqueued their keys.
    returned_at: AtomicU64,
    /// `idle_epoch` at which the last waiting batches were let go: every
    /// batch waiting at that moment goes with them, not one by one.
    released_at: AtomicU64,
}

tokio::task_local! {
    /// Set in the task of a batch counted busy when let go: its loader
    /// takes the count over instead of adding one.
    static COUNTED: Arc<AtomicBool>;
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

    /// An operation's future is being polled.
    fn polling(&self) {
        self.0.idle_epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// An operation's future returned: the keys its resolvers had to ask
    /// for in that pass are all enqueued.
    fn went_idle(&self) {
        self.0.idle_epoch.fetch_add(1, Ordering::SeqCst);
        if self.0.waiting.load(Ordering::SeqCst) > 0 {
            self.0.idle.notify_waiters();
        }
    }

    fn epoch(&self) -> u64 {
        self.0.idle_epoch.load(Ordering::SeqCst)
    }

    /// Counts a batch as busy until the guard is dropped (taking over the
    /// count of a batch let go by [`Self::quiescent`]).
    fn querying(&self) -> Querying<'_> {
        let counted = COUNTED
            .try_with(|c| c.swap(false, Ordering::SeqCst))
            .unwrap_or(false);
        if !counted {
            self.0.busy.fetch_add(1, Ordering::SeqCst);
        }
        Querying(&self.0)
    }

    /// Whether a batch waiting since `epoch` may be taken: an operation
    /// went idle since, and either no batch is busy and none returned since
    /// the operation last went idle (the resolvers its results woke have
    /// enqueued their keys), or batches were let go at this very moment.
    fn quiescent_after(&self, epoch: u64) -> bool {
        let now = self.epoch();
        // Idle (even), and idle again since the batch was made.
        if now <= epoch || now % 2 == 1 {
            return false;
        }
        if self.0.released_at.load(Ordering::SeqCst) == now {
            return true;
        }
        let quiet = self.0.busy.load(Ordering::SeqCst) == 0
            && now >= self.0.returned_at.load(Ordering::SeqCst);
        if quiet {
            self.0.released_at.fetch_max(now, Ordering::SeqCst);
        }
        quiet
    }

    /// Completes once [`Self::quiescent_after`] holds, or after `window`
    /// should the signal not come; the batch then counts as busy.
    async fn quiescent(&self, epoch: u64, window: Duration) {
        let _ = tokio::time::timeout(window, self.wait_quiescent(epoch)).await;
        self.0.busy.fetch_add(1, Ordering::SeqCst);
    }

    async fn wait_quiescent(&self, epoch: u64) {
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
            if self.quiescent_after(epoch) {
                return;
            }
            notified.await;
        }
    }
}

/// A batch being queried; dropped when its query returned (or failed).
struct Querying<'a>(&'a State);

impl Drop for Querying<'_> {
    fn drop(&mut self) {
        // Before the count falls (and before the results are handed over):
        // a waiting batch that sees no query running also sees this one's
        // return, and waits until the operation was polled once more after
        // it — the poll after the present one, if one is running (even: no
        // poll now, the next ends at +2; odd: this one ends at +1, and one
        // woken by these results during it ends at +3).
        let now = self.0.idle_epoch.load(Ordering::SeqCst);
        self.0
            .returned_at
            .fetch_max(now + 2 + now % 2, Ordering::SeqCst);
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Gives back the count of a batch let go whose loader never took it over
/// (no query after all: its keys went with a full batch), also should the
/// batch's task end half-way.
struct Unclaimed<'a>(&'a InFlight, Arc<AtomicBool>);

impl Drop for Unclaimed<'_> {
    fn drop(&mut self) {
        if self.1.swap(false, Ordering::SeqCst) {
            self.0.0.busy.fetch_sub(1, Ordering::SeqCst);
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
        self.in_flight.polling();
        let polled = self.inner.as_mut().poll(cx);
        self.in_flight.went_idle();
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
pub struct Shared<L>(Arc<L>, InFlight);

impl<K, L> Loader<K> for Shared<L>
where
    K: Send + Sync + Hash + Eq + Clone + 'static,
    L: Loader<K>,
{
    type Value = L::Value;
    type Error = L::Error;

    async fn load(&self, keys: &[K]) -> Result<HashMap<K, Self::Value>, Self::Error> {
        let _querying = self.1.querying();
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
                if !in_operation {
                    return batch.await;
                }
                signal.quiescent(epoch, window).await;
                let counted = Arc::new(AtomicBool::new(true));
                let _unclaimed = Unclaimed(&signal, counted.clone());
                COUNTED.scope(counted, batch).await;
            });
        };
        Adaptive {
            windowed: DataLoader::new(Shared(loader.clone(), in_flight.clone()), tokio::spawn)
                .delay(window),
            at_once: DataLoader::new(Shared(loader, in_flight.clone()), after_the_pass)
                .delay(Duration::ZERO),
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

    /// Records the batches it was asked for; answers after `.1`.
    #[derive(Default, Clone)]
    struct Batches(Arc<Mutex<Vec<Vec<u32>>>>, Duration);

    impl Loader<u32> for Batches {
        type Value = u32;
        type Error = std::convert::Infallible;

        async fn load(&self, keys: &[u32]) -> Result<HashMap<u32, u32>, Self::Error> {
            let mut sorted = keys.to_vec();
            sorted.sort();
            self.0.lock().unwrap().push(sorted);
            tokio::time::sleep(self.1).await;
            Ok(keys.iter().map(|k| (*k, k * 10)).collect())
        }
    }

    /// One operation, alone: two resolvers of a level, each first waiting
    /// for its own loader — a fast one and one answering after `slow` —
    /// then holding the poll for `fast_pass` / `slow_pass` (a long pass: a
    /// big list), then asking `next`. Returns `next`'s batches, and checks
    /// that they went by the operation's progress, not by the clock.
    async fn one_level_behind(
        slow: Duration,
        fast_pass: Duration,
        slow_pass: Duration,
    ) -> Vec<Vec<u32>> {
        let in_flight = InFlight::new(true);
        let window = Duration::from_millis(500);
        let fast = Adaptive::new(Batches::default(), window, in_flight.clone());
        let slow = Adaptive::new(Batches(Default::default(), slow), window, in_flight.clone());
        let level = Batches::default();
        let next = Adaptive::new(level.clone(), window, in_flight.clone());
        let _me = in_flight.enter();
        let started = std::time::Instant::now();
        SignalIdle {
            inner: Box::pin(async {
                // Polled in this order every pass (`tokio::join!` rotates):
                // the slow one's resolver has looked before its results come.
                let (b, a) = futures_util::future::join(
                    async {
                        slow.load_one(2).await.unwrap();
                        std::thread::sleep(slow_pass);
                        next.load_one(2).await
                    },
                    async {
                        fast.load_one(1).await.unwrap();
                        std::thread::sleep(fast_pass);
                        next.load_one(1).await
                    },
                )
                .await;
                assert_eq!((a.unwrap(), b.unwrap()), (Some(10), Some(20)));
                Response::default()
            }),
            in_flight: in_flight.clone(),
        }
        .await;
        assert!(started.elapsed() < window / 2, "{:?}", started.elapsed());
        level.0.lock().unwrap().clone()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn alone_a_level_reached_through_queries_of_different_length_is_one_batch() {
        // The resolver behind the fast query asks `next` 40 ms before its
        // sibling; both keys must still make one batch.
        let ms = Duration::from_millis;
        assert_eq!(
            one_level_behind(ms(40), ms(0), ms(0)).await,
            vec![vec![1, 2]]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_query_returning_while_the_operation_is_polled_still_joins_its_level() {
        // The slow query returns while the operation is being polled for
        // the fast one's results; that pass then asks `next` for the first
        // key. The second comes in the next pass, which the slow results
        // woke, and must join the same batch: the batch waits for that pass
        // to end, not for the first idle moment.
        let ms = Duration::from_millis;
        assert_eq!(
            one_level_behind(ms(10), ms(40), ms(20)).await,
            vec![vec![1, 2]]
        );
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
