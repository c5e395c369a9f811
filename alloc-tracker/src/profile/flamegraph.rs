//! [`HeapProfile::flamegraph_svg`] (feature `flamegraph`): a flame graph
//! drawn by `inferno` from the folded stacks.

use super::HeapProfile;

impl HeapProfile {
    /// A flame graph of the bytes allocated, as an SVG document, drawn by
    /// `inferno` from [`folded`](Self::folded). Feature `flamegraph`
    /// (`inferno` is CDDL-1.0 licensed).
    ///
    /// # Errors
    ///
    /// If `inferno` cannot draw the graph (for example, an empty profile).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// allocscope::profile::start_thread_sampling(1);
    /// let v = std::hint::black_box(vec![0u8; 100]);
    /// allocscope::profile::stop_thread_sampling();
    /// let svg = allocscope::profile::heap_profile().flamegraph_svg("bytes allocated").unwrap();
    /// assert!(svg.starts_with("<?xml"));
    /// # drop(v);
    /// ```
    pub fn flamegraph_svg(&self, title: &str) -> Result<String, std::io::Error> {
        // `io::Error` is not `Clone`: its kind and message are copied out.
        self.writing(|p| p.write_flamegraph_svg(title).map_err(|e| (e.kind(), e.to_string())))
            .map_err(|(kind, message)| std::io::Error::new(kind, message))
    }

    fn write_flamegraph_svg(&self, title: &str) -> Result<String, std::io::Error> {
        let folded = self.folded();
        let mut options = inferno::flamegraph::Options::default();
        options.title = title.to_owned();
        options.count_name = "bytes".to_owned();
        let mut svg = Vec::new();
        inferno::flamegraph::from_lines(&mut options, folded.lines(), &mut svg).map_err(std::io::Error::other)?;
        String::from_utf8(svg).map_err(std::io::Error::other)
    }
}
