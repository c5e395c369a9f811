//! [`Site`]: one allocation site of the heap profile, as read from the
//! sampler's table of stacks.

use super::Frame;
use crate::counters::sample::Stack;
use crate::symbols;

/// One allocation site of the heap profile: a call stack and what the
/// samples taken there stand for. Figures are estimates scaled from the
/// samples (exact at rate 1), named as in the crate docs' vocabulary:
/// `allocs` and `bytes` allocated here, `held_blocks` and `held_bytes`
/// allocated here and not freed yet (pprof's `inuse_objects` and
/// `inuse_space`). Its frames are resolved by [`Site::user_frames`].
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// allocscope::profile::start_thread_sampling(1); // every allocation: exact
/// let kept = std::hint::black_box(vec![0u8; 4096]);
/// allocscope::profile::stop_thread_sampling();
/// let profile = allocscope::profile::heap_profile();
/// let site = profile.sites.iter().find(|s| s.bytes == 4096.0).expect("the vector's site");
/// assert_eq!((site.allocs, site.held_blocks, site.held_bytes), (1.0, 1.0, 4096.0));
/// # drop(kept);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Site {
    /// Return addresses, innermost first.
    pub addresses: Vec<usize>,
    /// Samples taken at this site.
    pub samples: u64,
    /// Estimated allocations made here.
    pub allocs: f64,
    /// Estimated bytes allocated here.
    pub bytes: f64,
    /// Estimated blocks made here and not freed yet (freed blocks are
    /// seen on sampling threads).
    pub held_blocks: f64,
    /// Estimated bytes made here and not freed yet.
    pub held_bytes: f64,
}

impl Site {
    /// The site's frames that belong to the code under test (not the
    /// standard library's or the allocator's), innermost first, with
    /// symbols resolved now.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// #[inline(never)]
    /// fn make_index() -> Vec<u32> {
    ///     std::hint::black_box(vec![0u32; 64])
    /// }
    /// allocscope::profile::start_thread_sampling(1);
    /// let v = make_index();
    /// allocscope::profile::stop_thread_sampling();
    /// let profile = allocscope::profile::heap_profile();
    /// let found = profile.sites.iter().any(|s| s.user_frames().iter().any(|f| f.name.ends_with("make_index")));
    /// assert!(found);
    /// # drop(v);
    /// ```
    ///
    /// Each call resolves this site's addresses (a parse of the program's
    /// debug info when they are not cached): to read every site's frames,
    /// [`HeapProfile::user_frames`](super::HeapProfile::user_frames) resolves them all in one batch.
    pub fn user_frames(&self) -> Vec<Frame> {
        symbols::user_frames(&self.addresses)
    }
}

impl Site {
    /// The site of one sampled stack.
    pub(super) fn of(stack: &Stack) -> Site {
        let ((allocs, bytes), (held_blocks, held_bytes)) = (stack.allocated(), stack.held());
        Site { addresses: stack.addresses(), samples: stack.samples(), allocs, bytes, held_blocks, held_bytes }
    }
}
