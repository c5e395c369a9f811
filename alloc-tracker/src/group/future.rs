//! [`InGroup`] and [`Grouped`]: futures that enter their group around
//! every poll, as `tracing`'s `Instrumented` enters its span.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::stack::{Fresh, ShardCache};
use super::Group;

/// Futures that count their work in a group, on whichever thread polls
/// them: `fut.in_group(&group)` enters the group around every `poll` (as
/// `tracing`'s `Instrument` enters a span).
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// use allocscope::{Group, InGroup};
/// use std::future::Future;
///
/// let request = Group::new("doc.request");
/// let fut = async { std::hint::black_box(vec![0u8; 256]).len() }.in_group(&request);
/// // Any executor (tokio, async-std, ...); a minimal one here.
/// struct Noop;
/// impl std::task::Wake for Noop {
///     fn wake(self: std::sync::Arc<Self>) {}
/// }
/// let waker = std::task::Waker::from(std::sync::Arc::new(Noop));
/// let mut fut = std::pin::pin!(fut);
/// let n = loop {
///     if let std::task::Poll::Ready(n) = fut.as_mut().poll(&mut std::task::Context::from_waker(&waker)) {
///         break n;
///     }
/// };
/// assert_eq!((n, request.stats().bytes_allocated), (256, 256));
/// ```
pub trait InGroup: Future + Sized {
    /// This future, entering `group` around every poll.
    fn in_group(self, group: &Group) -> Grouped<Self> {
        Grouped { future: self, group: group.clone(), cache: ShardCache::default() }
    }
}

impl<F: Future> InGroup for F {}

pin_project_lite::pin_project! {
    /// A future that enters its group around every poll; see [`InGroup`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// use allocscope::{Group, Grouped, InGroup};
    ///
    /// let request = Group::new("doc.grouped");
    /// let fut: Grouped<_> = async { 42 }.in_group(&request);
    /// assert_eq!(fut.group().name(), "doc.grouped");
    /// // Taken out again, unpolled: the plain future.
    /// let plain = fut.into_inner();
    /// # drop(plain);
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Grouped<F> {
        #[pin]
        future: F,
        group: Group,
        cache: ShardCache,
    }
}

impl<F> Grouped<F> {
    /// The group the future enters.
    pub fn group(&self) -> &Group {
        &self.group
    }

    /// The wrapped future.
    pub fn inner(&self) -> &F {
        &self.future
    }

    /// The wrapped future, mutably.
    pub fn inner_mut(&mut self) -> &mut F {
        &mut self.future
    }

    /// The wrapped future, pinned.
    pub fn inner_pin_mut(self: Pin<&mut Self>) -> Pin<&mut F> {
        self.project().future
    }

    /// The wrapped future, out of its group (the group's handle is
    /// dropped; what was counted stays counted).
    pub fn into_inner(self) -> F {
        self.future
    }
}

impl<F> fmt::Debug for Grouped<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grouped").field("group", &self.group.name()).finish_non_exhaustive()
    }
}

impl<F: Future> Future for Grouped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _in_group = this.group.enter_with(Fresh::No, Some(this.cache));
        this.future.poll(cx)
    }
}
