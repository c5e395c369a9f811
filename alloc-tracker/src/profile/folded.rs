//! [`HeapProfile::folded`]: folded stacks, the input of flame graph tools.

use super::HeapProfile;

impl HeapProfile {
    /// The profile in folded-stack form, one line per site: the functions of
    /// the code under test from outermost to innermost joined by `;`, a
    /// space, and the estimated bytes allocated there (rounded). Standard
    /// library and allocator frames are left out. The input of `inferno`'s
    /// and Brendan Gregg's flame graph tools.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// #[inline(never)]
    /// fn make_table() -> Vec<u64> {
    ///     std::hint::black_box(vec![0u64; 512])
    /// }
    /// allocscope::start_sampling(1);
    /// let t = make_table();
    /// allocscope::stop_sampling();
    /// let folded = allocscope::heap_profile().folded();
    /// assert!(folded.lines().any(|l| l.contains("make_table") && l.ends_with(" 4096")), "{folded}");
    /// # drop(t);
    /// ```
    pub fn folded(&self) -> String {
        let mut merged: Vec<(String, f64)> = Vec::new();
        for site in &self.sites {
            let mut names: Vec<String> = site.user_frames().into_iter().map(|f| f.name.replace(';', ":")).collect();
            if names.is_empty() {
                names.push("[unknown]".to_owned());
            }
            names.reverse();
            let stack = names.join(";");
            match merged.iter_mut().find(|(s, _)| *s == stack) {
                Some((_, bytes)) => *bytes += site.bytes,
                None => merged.push((stack, site.bytes)),
            }
        }
        merged.sort_by(|a, b| a.0.cmp(&b.0));
        merged.iter().map(|(stack, bytes)| format!("{stack} {}\n", bytes.round() as u64)).collect()
    }
}
