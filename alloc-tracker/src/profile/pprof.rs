//! The pprof format: `profile.proto` of github.com/google/pprof,
//! encoded by hand (a few message types, varints and length-delimited
//! fields), gzipped as `go tool pprof` expects.

use std::collections::HashMap;

use super::HeapProfile;

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

/// One of the four sample types of a heap profile, in Go's order and with
/// Go's names; see [`HeapProfile::pprof_gz_with_default`]. Feature `pprof`.
///
/// # Examples
///
/// ```
/// assert_eq!(allocscope::profile::SampleType::InuseSpace.name(), "inuse_space");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SampleType {
    /// `alloc_objects`: allocations made (count).
    AllocObjects,
    /// `alloc_space`: bytes allocated.
    AllocSpace,
    /// `inuse_objects`: allocations not freed yet (count).
    InuseObjects,
    /// `inuse_space`: bytes not freed yet; Go's heap endpoint's default.
    InuseSpace,
}

impl SampleType {
    /// Every type, in the order of the profile's values.
    const ALL: [SampleType; 4] =
        [SampleType::AllocObjects, SampleType::AllocSpace, SampleType::InuseObjects, SampleType::InuseSpace];

    /// Go's name for it (`go tool pprof -sample_index=NAME`).
    pub const fn name(self) -> &'static str {
        match self {
            SampleType::AllocObjects => "alloc_objects",
            SampleType::AllocSpace => "alloc_space",
            SampleType::InuseObjects => "inuse_objects",
            SampleType::InuseSpace => "inuse_space",
        }
    }

    const fn unit(self) -> &'static str {
        match self {
            SampleType::AllocObjects | SampleType::InuseObjects => "count",
            SampleType::AllocSpace | SampleType::InuseSpace => "bytes",
        }
    }
}

/// Whether a profile's locations carry their functions and lines, or
/// addresses only (for a tool that holds the binary to resolve them).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Names {
    Resolved,
    AddressesOnly,
}

/// pprof's `Mapping` messages of `mappings` (ids from 1), saying whether
/// the locations carry their functions, files, lines and inlined frames.
fn mapping_msgs(mappings: &[crate::symbols::Mapping], names: Names, strings: &mut Strings) -> Vec<Vec<u8>> {
    let resolved = u64::from(names == Names::Resolved);
    mappings
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut msg = Vec::new();
            uint(&mut msg, 1, i as u64 + 1);
            uint(&mut msg, 2, m.start);
            uint(&mut msg, 3, m.limit);
            uint(&mut msg, 4, m.offset);
            uint(&mut msg, 5, strings.id(&m.file));
            uint(&mut msg, 6, strings.id(&m.build_id));
            for field in 7..=10 {
                uint(&mut msg, field, resolved);
            }
            msg
        })
        .collect()
}

/// The id of the mapping that holds `address`, 0 for none.
fn mapping_of(mappings: &[crate::symbols::Mapping], address: u64) -> u64 {
    mappings.iter().position(|m| (m.start..m.limit).contains(&address)).map_or(0, |i| i as u64 + 1)
}

/// A location's address for a frame's return address: the call
/// instruction's (one byte back), so that a tool resolving it lands on
/// the call's line, not the next one's.
fn call_address(return_address: usize) -> u64 {
    return_address.saturating_sub(1) as u64
}

fn encode(profile: &HeapProfile, period: u64, time_nanos: u64, default: Option<SampleType>, names: Names) -> Vec<u8> {
    let mut strings = Strings::default();
    strings.id("");
    let mut out = Vec::new();
    // sample_type = 1: Go's heap profile order.
    for t in SampleType::ALL {
        let mut vt = Vec::new();
        uint(&mut vt, 1, strings.id(t.name()));
        uint(&mut vt, 2, strings.id(t.unit()));
        bytes(&mut out, 1, &vt);
    }
    // default_sample_type = 14, an index into the string table.
    let default = default.map(|t| strings.id(t.name()));
    let mappings = crate::symbols::mappings();
    let mapping_msgs = mapping_msgs(&mappings, names, &mut strings);
    let mut functions: HashMap<(String, String), u64> = HashMap::new();
    let mut function_msgs = Vec::new();
    let mut locations: HashMap<(usize, String), u64> = HashMap::new();
    let mut location_msgs = Vec::new();
    for site in &profile.sites {
        let mut ids = Vec::new();
        if names == Names::AddressesOnly {
            // Every frame the stack has, the library's own at the top
            // included: telling them apart takes their names.
            for &ip in &site.addresses {
                let next_l = locations.len() as u64 + 1;
                let lid = *locations.entry((ip, String::new())).or_insert_with(|| {
                    let mut l = Vec::new();
                    uint(&mut l, 1, next_l);
                    uint(&mut l, 2, mapping_of(&mappings, call_address(ip)));
                    uint(&mut l, 3, call_address(ip));
                    location_msgs.push(l);
                    next_l
                });
                ids.push(lid);
            }
        }
        let frames = if names == Names::Resolved { site.user_frames() } else { Vec::new() };
        for frame in frames {
            let fkey = (frame.name.clone(), frame.file.clone());
            let next_f = functions.len() as u64 + 1;
            let fid = *functions.entry(fkey).or_insert_with(|| {
                let mut f = Vec::new();
                uint(&mut f, 1, next_f);
                // name: whose method it is, as Go names methods, without
                // generic arguments (pprof's convention); system_name: the
                // full symbol name; the file and line stay apart.
                uint(&mut f, 2, strings.id(&crate::stack::go_name(&frame.name)));
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
                uint(&mut l, 2, mapping_of(&mappings, call_address(frame.address)));
                uint(&mut l, 3, call_address(frame.address));
                bytes(&mut l, 4, &line);
                location_msgs.push(l);
                next_l
            });
            ids.push(lid);
        }
        let mut sample = Vec::new();
        packed(&mut sample, 1, ids);
        // A profile since start-up has no negative figure (an estimate's
        // noise is cut at 0); a window's held figures may fall (pprof's
        // values are int64, written in two's complement).
        let floor = if profile.duration.is_some() { f64::MIN } else { 0.0 };
        let values = [site.allocs, site.bytes, site.held_blocks.max(floor), site.held_bytes.max(floor)];
        packed(&mut sample, 2, values.map(|v| v.round() as i64 as u64));
        bytes(&mut out, 2, &sample);
    }
    for m in &mapping_msgs {
        bytes(&mut out, 3, m);
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
    if let Some(d) = profile.duration {
        uint(&mut out, 10, d.as_nanos() as u64);
    }
    bytes(&mut out, 11, &period_type);
    uint(&mut out, 12, period);
    if let Some(d) = default {
        uint(&mut out, 14, d);
    }
    out
}

impl HeapProfile {
    /// The profile as a gzipped pprof protobuf (`heap.pb.gz`), with Go's
    /// four heap sample types in Go's order: `alloc_objects/count`,
    /// `alloc_space/bytes`, `inuse_objects/count`, `inuse_space/bytes`.
    /// `go tool pprof -top heap.pb.gz` reads it, showing the last type
    /// (`inuse_space`) unless told otherwise: see
    /// [`pprof_gz_with_default`](Self::pprof_gz_with_default). Feature
    /// `pprof`.
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
    /// let gz = allocscope::profile::heap_profile().pprof_gz();
    /// assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
    /// # drop(v);
    /// ```
    pub fn pprof_gz(&self) -> Vec<u8> {
        self.gzipped(None)
    }

    /// [`pprof_gz`](Self::pprof_gz), with the sample type `go tool pprof`
    /// and other viewers show first (pprof's `default_sample_type`): Go's
    /// heap endpoint defaults to `inuse_space`, its allocs endpoint and a
    /// benchmark's profile to `alloc_space`. Feature `pprof`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// use allocscope::profile::SampleType;
    /// let gz = allocscope::profile::heap_profile().pprof_gz_with_default(SampleType::AllocSpace);
    /// assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
    /// ```
    pub fn pprof_gz_with_default(&self, default: SampleType) -> Vec<u8> {
        self.gzipped(Some(default))
    }

    /// [`pprof_gz_with_default`](Self::pprof_gz_with_default) with addresses
    /// only: no function, file or line, nothing resolved, so writing it
    /// reads no debug info and costs next to no memory. The profile carries
    /// each executable mapping's file, address range, offset and GNU build
    /// id, from which a tool that holds the binary resolves the addresses
    /// itself (`go tool pprof BINARY PROFILE`; a fleet's central
    /// symbolizer, by build id). Every frame of each stack is there, the
    /// library's own at the top included (`go tool pprof
    /// -hide='^allocscope::'` hides them once resolved). Linux only for the
    /// mappings; elsewhere the profile has none. Feature `pprof`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// use allocscope::profile::SampleType;
    /// allocscope::profile::start_thread_sampling(1);
    /// let kept = std::hint::black_box(vec![0u8; 100]);
    /// allocscope::profile::stop_thread_sampling();
    /// let gz = allocscope::profile::heap_profile().pprof_gz_addresses_only(SampleType::InuseSpace);
    /// assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
    /// # drop(kept);
    /// ```
    pub fn pprof_gz_addresses_only(&self, default: SampleType) -> Vec<u8> {
        // Nothing to resolve first: written as the library's own work
        // without the symbolizer.
        crate::symbols::produce(|| self.write_gzipped(Some(default), Names::AddressesOnly))
    }

    fn gzipped(&self, default: Option<SampleType>) -> Vec<u8> {
        self.writing(|p| p.write_gzipped(default, Names::Resolved))
    }

    fn write_gzipped(&self, default: Option<SampleType>, names: Names) -> Vec<u8> {
        use std::io::Write;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let raw = encode(self, self.sample_rate, now, default, names);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&raw).expect("writing to a Vec cannot fail");
        gz.finish().expect("writing to a Vec cannot fail")
    }

    /// The uncompressed pprof protobuf (see [`pprof_gz`](Self::pprof_gz)).
    /// Feature `pprof`.
    pub fn pprof_protobuf(&self) -> Vec<u8> {
        self.writing(|p| encode(p, p.sample_rate, 0, None, Names::Resolved))
    }
}

impl HeapProfile {
    /// The profile as text, in the shape of Go's `/debug/pprof/heap?debug=1`:
    /// a header with the totals, then one record per site, largest first
    /// by `order` (`inuse_*`: held figures; `alloc_*`: allocated), each with
    /// its live and allocated figures and its frames of the code under test
    /// (address, function, file and line). The figures are the estimates of
    /// the other writers, already scaled, so the header's rate is written
    /// as `heap/2` (rate 1: no further scaling) and the sampling rate goes
    /// in a comment. Feature `pprof`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// #[inline(never)]
    /// fn make_buffer() -> Vec<u8> {
    ///     std::hint::black_box(vec![0u8; 2048])
    /// }
    /// allocscope::profile::start_thread_sampling(1);
    /// let kept = make_buffer();
    /// allocscope::profile::stop_thread_sampling();
    /// let text = allocscope::profile::heap_profile().pprof_text(allocscope::profile::SampleType::InuseSpace);
    /// assert!(text.starts_with("heap profile: "));
    /// assert!(text.lines().any(|l| l.starts_with("#\t0x") && l.contains("make_buffer")), "{text}");
    /// # drop(kept);
    /// ```
    pub fn pprof_text(&self, order: SampleType) -> String {
        self.writing(|p| p.write_text(order))
    }

    fn write_text(&self, order: SampleType) -> String {
        use std::fmt::Write;
        let n = |v: f64| v.round() as i64;
        let total = |f: fn(&super::Site) -> f64| n(self.sites.iter().map(f).sum::<f64>());
        let mut text = String::new();
        let _ = writeln!(
            text,
            "heap profile: {}: {} [{}: {}] @ heap/2",
            total(|s| s.held_blocks),
            total(|s| s.held_bytes),
            total(|s| s.allocs),
            total(|s| s.bytes),
        );
        let mut sites: Vec<&super::Site> = self.sites.iter().collect();
        let key = |s: &super::Site| match order {
            SampleType::AllocObjects => s.allocs,
            SampleType::AllocSpace => s.bytes,
            SampleType::InuseObjects => s.held_blocks,
            SampleType::InuseSpace => s.held_bytes,
        };
        sites.sort_by(|a, b| key(b).total_cmp(&key(a)));
        for site in sites {
            let addresses: Vec<String> = site.addresses.iter().map(|a| format!("{a:#x}")).collect();
            let _ = writeln!(
                text,
                "{}: {} [{}: {}] @ {}",
                n(site.held_blocks),
                n(site.held_bytes),
                n(site.allocs),
                n(site.bytes),
                addresses.join(" ")
            );
            for f in site.user_frames() {
                let name = crate::stack::without_generics(&f.name);
                if f.line == 0 {
                    let _ = writeln!(text, "#\t{:#x}\t{name}", f.address);
                } else {
                    let _ = writeln!(text, "#\t{:#x}\t{name}\t{}:{}", f.address, f.file, f.line);
                }
            }
            text.push('\n');
        }
        let _ = writeln!(text, "# allocscope heap profile, sorted by {}", order.name());
        let _ = writeln!(text, "# sample_rate = {} bytes per sample (0: several rates)", self.sample_rate);
        if let Some(d) = self.duration {
            let _ = writeln!(text, "# window = {:.3} s (figures are changes over it)", d.as_secs_f64());
        }
        let _ = writeln!(text, "# sites = {}", self.sites.len());
        let _ = writeln!(text, "# dropped_samples = {}", self.dropped_samples);
        let _ = writeln!(text, "# untracked_held_samples = {}", self.untracked_held_samples);
        text
    }
}
