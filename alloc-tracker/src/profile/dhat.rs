//! [`HeapProfile::dhat_json`]: DHAT's JSON format, file version 2, which
//! Valgrind's DHAT viewer (`dh_view.html`) opens.

use super::HeapProfile;

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl HeapProfile {
    /// The profile in DHAT's JSON format, file version 2
    /// (`dhat-heap.json`), which Valgrind's DHAT viewer (`dh_view.html`)
    /// opens: one program point per site with its total bytes (`tb`) and
    /// blocks (`tbk`), and the frame table. Block lifetimes are not tracked
    /// (`"bklt": false`), so the viewer shows totals, not peaks or
    /// lifetimes. Its time unit is the sample: `te` is the number of
    /// samples. `cmd` is recorded as given.
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
    /// let json = allocscope::profile::heap_profile().dhat_json("doc-test");
    /// assert!(json.starts_with("{\"dhatFileVersion\":2,"));
    /// # drop(v);
    /// ```
    pub fn dhat_json(&self, cmd: &str) -> String {
        self.writing(|p| p.write_dhat_json(cmd))
    }

    fn write_dhat_json(&self, cmd: &str) -> String {
        let mut ftbl: Vec<String> = vec!["[root]".to_owned()];
        let mut pps = Vec::new();
        for site in &self.sites {
            let mut fs = Vec::new();
            for frame in site.user_frames() {
                let entry = format!("{:#x}: {} ({}:{}:0)", frame.address, frame.name, frame.file, frame.line);
                let index = ftbl.iter().position(|e| *e == entry).unwrap_or_else(|| {
                    ftbl.push(entry);
                    ftbl.len() - 1
                });
                fs.push(index.to_string());
            }
            pps.push(format!(
                "{{\"tb\":{},\"tbk\":{},\"fs\":[{}]}}",
                site.bytes.round() as u64,
                site.allocs.round() as u64,
                fs.join(",")
            ));
        }
        let ftbl: Vec<String> = ftbl.iter().map(|e| json_str(e)).collect();
        format!(
            "{{\"dhatFileVersion\":2,\"mode\":\"rust-heap\",\"verb\":\"Allocated\",\"bklt\":false,\"bkacc\":false,\
             \"bu\":\"byte\",\"bsu\":\"bytes\",\"bksu\":\"blocks\",\"tu\":\"samples\",\"Mtu\":\"samples\",\
             \"cmd\":{},\"pid\":{},\"te\":{},\"pps\":[{}],\"ftbl\":[{}]}}",
            json_str(cmd),
            std::process::id(),
            // The time axis is the samples taken (DHAT divides totals by it).
            self.sites.iter().map(|s| s.samples).sum::<u64>().max(1),
            pps.join(","),
            ftbl.join(",")
        )
    }
}
