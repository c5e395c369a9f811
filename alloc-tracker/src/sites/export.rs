//! Writers for [`HeapProfile`]: pprof (gzipped protobuf, feature `pprof`)
//! and flame graph SVG (feature `flamegraph`). Folded stacks are in
//! `profile.rs`. Symbols are resolved here, never in the allocator.

use super::profile::{HeapProfile, Site};

/// One resolved frame of the code under test; see [`Site::user_frames`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Frame {
    /// The return address.
    pub address: usize,
    /// The demangled function name, without its hash.
    pub name: String,
    /// The source file, or empty without debug info.
    pub file: String,
    /// The source line, or 0 without debug info.
    pub line: u32,
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
    /// allocscope::start_sampling(1);
    /// let v = make_index();
    /// allocscope::stop_sampling();
    /// let profile = allocscope::heap_profile();
    /// let found = profile.sites.iter().any(|s| s.user_frames().iter().any(|f| f.name.ends_with("make_index")));
    /// assert!(found);
    /// # drop(v);
    /// ```
    pub fn user_frames(&self) -> Vec<Frame> {
        user_frames(self)
    }
}

/// The frames of `site` that belong to the code under test, innermost
/// first (an address that inlines several functions gives several frames).
pub(crate) fn user_frames(site: &Site) -> Vec<Frame> {
    resolve_user_frames(&site.addresses)
}

/// Resolves return addresses, innermost first, keeping the frames of the
/// code under test.
pub(crate) fn resolve_user_frames(addresses: &[usize]) -> Vec<Frame> {
    let mut frames = Vec::new();
    for &ip in addresses {
        backtrace::resolve(ip as *mut std::ffi::c_void, |symbol| {
            let name = symbol.name().map(|n| format!("{n:#}")).unwrap_or_else(|| format!("{ip:#x}"));
            if super::is_machinery(&name, symbol.filename()) {
                return;
            }
            frames.push(Frame {
                address: ip,
                name,
                file: symbol.filename().map(|f| f.display().to_string()).unwrap_or_default(),
                line: symbol.lineno().unwrap_or(0),
            });
        });
    }
    frames
}

#[cfg(feature = "pprof")]
mod pprof {
    //! The pprof format: `profile.proto` of github.com/google/pprof,
    //! encoded by hand (a few message types, varints and length-delimited
    //! fields), gzipped as `go tool pprof` expects.

    use std::collections::HashMap;

    fn varint(buf: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        buf.push(v as u8);
    }

    fn uint(buf: &mut Vec<u8>, field: u64, v: u64) {
        varint(buf, field << 3);
        varint(buf, v);
    }

    fn bytes(buf: &mut Vec<u8>, field: u64, b: &[u8]) {
        varint(buf, (field << 3) | 2);
        varint(buf, b.len() as u64);
        buf.extend_from_slice(b);
    }

    fn packed(buf: &mut Vec<u8>, field: u64, values: impl IntoIterator<Item = u64>) {
        let mut inner = Vec::new();
        for v in values {
            varint(&mut inner, v);
        }
        bytes(buf, field, &inner);
    }

    #[derive(Default)]
    struct Strings {
        table: Vec<String>,
        index: HashMap<String, u64>,
    }

    impl Strings {
        fn id(&mut self, s: &str) -> u64 {
            if self.table.is_empty() {
                self.table.push(String::new());
                self.index.insert(String::new(), 0);
            }
            if let Some(&i) = self.index.get(s) {
                return i;
            }
            let i = self.table.len() as u64;
            self.table.push(s.to_owned());
            self.index.insert(s.to_owned(), i);
            i
        }
    }

    pub(super) fn encode(profile: &super::HeapProfile, period: u64, time_nanos: u64) -> Vec<u8> {
        let mut strings = Strings::default();
        strings.id("");
        let mut out = Vec::new();
        // sample_type = 1: Go's heap profile order.
        for (kind, unit) in
            [("alloc_objects", "count"), ("alloc_space", "bytes"), ("inuse_objects", "count"), ("inuse_space", "bytes")]
        {
            let mut vt = Vec::new();
            uint(&mut vt, 1, strings.id(kind));
            uint(&mut vt, 2, strings.id(unit));
            bytes(&mut out, 1, &vt);
        }
        let mut functions: HashMap<(String, String), u64> = HashMap::new();
        let mut function_msgs = Vec::new();
        let mut locations: HashMap<(usize, String), u64> = HashMap::new();
        let mut location_msgs = Vec::new();
        for site in &profile.sites {
            let mut ids = Vec::new();
            for frame in super::user_frames(site) {
                let fkey = (frame.name.clone(), frame.file.clone());
                let next_f = functions.len() as u64 + 1;
                let fid = *functions.entry(fkey).or_insert_with(|| {
                    let mut f = Vec::new();
                    uint(&mut f, 1, next_f);
                    uint(&mut f, 2, strings.id(&frame.name));
                    uint(&mut f, 3, strings.id(&frame.name));
                    uint(&mut f, 4, strings.id(&frame.file));
                    function_msgs.push(f);
                    next_f
                });
                let next_l = locations.len() as u64 + 1;
                let lid = *locations.entry((frame.address, frame.name.clone())).or_insert_with(|| {
                    let mut line = Vec::new();
                    uint(&mut line, 1, fid);
                    uint(&mut line, 2, u64::from(frame.line));
                    let mut l = Vec::new();
                    uint(&mut l, 1, next_l);
                    uint(&mut l, 3, frame.address as u64);
                    bytes(&mut l, 4, &line);
                    location_msgs.push(l);
                    next_l
                });
                ids.push(lid);
            }
            let mut sample = Vec::new();
            packed(&mut sample, 1, ids);
            let values = [site.allocs, site.bytes, site.live_allocs.max(0.0), site.live_bytes.max(0.0)];
            packed(&mut sample, 2, values.map(|v| v.round() as u64));
            bytes(&mut out, 2, &sample);
        }
        for l in &location_msgs {
            bytes(&mut out, 4, l);
        }
        for f in &function_msgs {
            bytes(&mut out, 5, f);
        }
        let mut period_type = Vec::new();
        uint(&mut period_type, 1, strings.id("space"));
        uint(&mut period_type, 2, strings.id("bytes"));
        for s in &strings.table {
            bytes(&mut out, 6, s.as_bytes());
        }
        uint(&mut out, 9, time_nanos);
        bytes(&mut out, 11, &period_type);
        uint(&mut out, 12, period);
        out
    }
}

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
    /// allocscope::start_sampling(1);
    /// let v = std::hint::black_box(vec![0u8; 100]);
    /// allocscope::stop_sampling();
    /// let json = allocscope::heap_profile().dhat_json("doc-test");
    /// assert!(json.starts_with("{\"dhatFileVersion\":2,"));
    /// # drop(v);
    /// ```
    pub fn dhat_json(&self, cmd: &str) -> String {
        let mut ftbl: Vec<String> = vec!["[root]".to_owned()];
        let mut pps = Vec::new();
        for site in &self.sites {
            let mut fs = Vec::new();
            for frame in user_frames(site) {
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

    /// The profile as a gzipped pprof protobuf (`heap.pb.gz`), with Go's
    /// four heap sample types in Go's order: `alloc_objects/count`,
    /// `alloc_space/bytes`, `inuse_objects/count`, `inuse_space/bytes`.
    /// `go tool pprof -top heap.pb.gz` reads it. Feature `pprof`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// allocscope::start_sampling(1);
    /// let v = std::hint::black_box(vec![0u8; 100]);
    /// allocscope::stop_sampling();
    /// let gz = allocscope::heap_profile().pprof_gz();
    /// assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
    /// # drop(v);
    /// ```
    #[cfg(feature = "pprof")]
    pub fn pprof_gz(&self) -> Vec<u8> {
        use std::io::Write;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let raw = pprof::encode(self, self.sample_rate, now);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&raw).expect("writing to a Vec cannot fail");
        gz.finish().expect("writing to a Vec cannot fail")
    }

    /// The uncompressed pprof protobuf (see [`pprof_gz`](Self::pprof_gz)).
    /// Feature `pprof`.
    #[cfg(feature = "pprof")]
    pub fn pprof_protobuf(&self) -> Vec<u8> {
        pprof::encode(self, self.sample_rate, 0)
    }

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
    /// allocscope::start_sampling(1);
    /// let v = std::hint::black_box(vec![0u8; 100]);
    /// allocscope::stop_sampling();
    /// let svg = allocscope::heap_profile().flamegraph_svg("bytes allocated").unwrap();
    /// assert!(svg.starts_with("<?xml"));
    /// # drop(v);
    /// ```
    #[cfg(feature = "flamegraph")]
    pub fn flamegraph_svg(&self, title: &str) -> Result<String, std::io::Error> {
        let folded = self.folded();
        let mut options = inferno::flamegraph::Options::default();
        options.title = title.to_owned();
        options.count_name = "bytes".to_owned();
        let mut svg = Vec::new();
        inferno::flamegraph::from_lines(&mut options, folded.lines(), &mut svg).map_err(std::io::Error::other)?;
        String::from_utf8(svg).map_err(std::io::Error::other)
    }
}
