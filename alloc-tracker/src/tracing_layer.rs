//! Feature `tracing`: [`GroupLayer`], a `tracing_subscriber` layer that
//! counts the work done inside each span in the [`Group`] named after the
//! span, so `#[instrument]`ed functions get exact allocation figures with
//! no other change to their code. Read them with [`Group::listed`] (the
//! span's name) or [`Group::all_listed`], at any time.
//!
//! Each enter of a span opens a window of its group on the entering
//! thread, each exit ends it (see [`Group`] for what that counts), so an
//! instrumented future (`tracing::Instrument`) is counted on whichever
//! thread polls it, and spans nest as groups do (each event counts in the
//! innermost entered span's group only). tracing's
//! own bookkeeping counts where it happens: creating a span (the
//! registry's slot, the span's group in its extensions) allocates in the
//! group of the span it is created in, if any.
//!
//! tracking-allocator's `AllocationLayer` enters its groups the same way
//! and streams every event to a callback; here the figures are kept,
//! exact, and readable at any time.

use std::cell::Cell;

use tracing_core::span::{Attributes, Id};
use tracing_core::Subscriber;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::group::Group;
use crate::group::{enter_raw, exit_raw};

/// A `tracing_subscriber` layer that counts each span's work in the group
/// named after the span.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let subscriber = tracing_subscriber::registry().with(allocscope::GroupLayer::new());
/// tracing::subscriber::with_default(subscriber, || {
///     let span = tracing::info_span!("doc.parse");
///     span.in_scope(|| std::hint::black_box(vec![0u8; 100]));
/// });
/// assert_eq!(allocscope::Group::listed("doc.parse").stats().bytes_allocated, 100);
/// ```
#[derive(Clone, Debug, Default)]
pub struct GroupLayer {
    only_with_field: Option<&'static str>,
}

impl GroupLayer {
    /// A layer for every span.
    pub fn new() -> GroupLayer {
        GroupLayer { only_with_field: None }
    }

    /// A layer for the spans that declare the field `name` only (for
    /// example `#[instrument(fields(allocscope))]`), leaving other spans
    /// alone.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let layer = allocscope::GroupLayer::only_with_field("allocscope");
    /// # drop(layer);
    /// ```
    pub fn only_with_field(name: &'static str) -> GroupLayer {
        GroupLayer { only_with_field: Some(name) }
    }
}

/// The group of a span, kept in its extensions.
struct SpanGroup(Group);

/// The most spans entered at once on one thread that this layer follows.
const MAX_ENTERED: usize = crate::group::MAX_OPEN_GROUPS;

thread_local! {
    /// The spans this layer entered on this thread: (span id, window id).
    static ENTERED: [Cell<(u64, u64)>; MAX_ENTERED] = const { [const { Cell::new((0, 0)) }; MAX_ENTERED] };
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

impl<S> Layer<S> for GroupLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let meta = attrs.metadata();
        if self.only_with_field.is_some_and(|f| meta.fields().field(f).is_none()) {
            return;
        }
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanGroup(Group::listed(meta.name())));
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let Some(group) = span.extensions().get::<SpanGroup>().map(|g| g.0.clone()) else { return };
        let depth = DEPTH.get();
        if depth == MAX_ENTERED {
            return;
        }
        let Some(window) = enter_raw(&group) else { return };
        ENTERED.with(|e| e[depth].set((id.into_u64(), window)));
        DEPTH.set(depth + 1);
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        let depth = DEPTH.get();
        let found =
            ENTERED.with(|e| (0..depth).rev().find(|&i| e[i].get().0 == id.into_u64()).map(|i| (i, e[i].get().1)));
        let Some((at, window)) = found else { return };
        ENTERED.with(|e| {
            for i in at..depth - 1 {
                e[i].set(e[i + 1].get());
            }
        });
        DEPTH.set(depth - 1);
        exit_raw(window);
    }
}
