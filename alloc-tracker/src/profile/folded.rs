//! [`HeapProfile::folded`]: folded stacks, the input of flame graph tools.

use super::HeapProfile;
use crate::stack::{without_generics, Frame};

impl HeapProfile {
    /// The profile in folded-stack form, one line per site: the frames of
    /// the code under test from outermost to innermost joined by `;`, a
    /// space, and the estimated bytes allocated there (rounded). Standard
    /// library and allocator frames are left out. The input of `inferno`'s
    /// and Brendan Gregg's flame graph tools.
    ///
    /// A frame reads `function (dir/file.rs:line)`: the function without
    /// its generic arguments (which would fill a flame graph's box before
    /// its name), and the last three components of its file with the line,
    /// so that two functions of one name in different modules, and two
    /// sites in one function, stay apart.
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
    /// allocscope::profile::start_thread_sampling(1);
    /// let t = make_table();
    /// allocscope::profile::stop_thread_sampling();
    /// let folded = allocscope::profile::heap_profile().folded();
    /// assert!(folded.lines().any(|l| l.contains("make_table") && l.ends_with(" 4096")), "{folded}");
    /// # drop(t);
    /// ```
    pub fn folded(&self) -> String {
        self.writing(Self::write_folded)
    }

    fn write_folded(&self) -> String {
        let mut merged: Vec<(String, f64)> = Vec::new();
        for site in &self.sites {
            let mut names: Vec<String> = site.user_frames().iter().map(|f| label(f).replace(';', ":")).collect();
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

/// A frame's label in a folded stack: see [`HeapProfile::folded`].
fn label(f: &Frame) -> String {
    if f.file.is_empty() || f.line == 0 {
        return without_generics(&f.name);
    }
    format!("{} ({}:{})", without_generics(&f.name), file_tail(&f.file), f.line)
}

/// The last three components of a source path: `queue/src/baseline.rs`.
fn file_tail(file: &str) -> String {
    let parts: Vec<&str> = file.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
    parts[parts.len().saturating_sub(3)..].join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_keep_the_file_and_line_and_drop_generic_arguments() {
        let f = Frame { address: 0, name: "boxed".into(), file: "/work/queue/src/baseline.rs".into(), line: 48 };
        assert_eq!(label(&f), "boxed (queue/src/baseline.rs:48)");
        let f = Frame { address: 0, name: "main".into(), file: String::new(), line: 0 };
        assert_eq!(label(&f), "main");
    }
}
