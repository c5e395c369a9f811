//! The service surface: a [`Snapshot`] of everything allocscope knows,
//! readable from any thread at any time ([`snapshot`]); the same figures in
//! Prometheus' text exposition format ([`Snapshot::prometheus_text`]),
//! through the `metrics` facade ([`metrics`], feature `metrics`), and over
//! HTTP with the heap profile ([`router`] and [`start`], feature `serve`),
//! as Go services expose theirs (`net/http/pprof`):
//!
//! - `GET /metrics`: [`Snapshot::prometheus_text`], for Prometheus;
//! - `GET /debug/pprof/heap`: the sampled heap profile, gzipped pprof with
//!   Go's four sample types, `inuse_space` shown first (Go's default), for
//!   `go tool pprof`, Pyroscope or Parca;
//! - `GET /debug/pprof/allocs`: the same data, `alloc_space` first;
//! - both take Go's parameters: `?debug=1`, the profile as text;
//!   `?seconds=N` (1 to [`MAX_SECONDS`]), what happened in the next N
//!   seconds (the difference of two profiles, as `go tool pprof -seconds N`
//!   asks for it); a bad value gets a 400 that names the parameter; and
//!   one of allocscope's own, `?symbolize=0`: addresses and the program's
//!   mappings (file, range, offset, GNU build id) only, nothing resolved,
//!   for a tool that holds the binary (`go tool pprof BINARY PROFILE`, a
//!   fleet's central symbolizer), at next to no memory
//!   ([`HeapProfile::pprof_gz_addresses_only`]);
//! - `GET /debug/pprof/`: an index of the above with links
//!   (`/debug/pprof` redirects there, as in Go);
//! - `GET /debug/pprof/sample_rate`: the process-wide sampling rate, and
//!   `PUT /debug/pprof/sample_rate?bytes=N` to change it at run time (0
//!   turns it off; otherwise [`MIN_SAMPLE_RATE`] to [`MAX_SAMPLE_RATE`];
//!   what sampling costs when off is unchanged). See the threat model
//!   below.
//!
//! Writing a profile resolves its symbols as the library's own work: the
//! symbolizer's memory is in no figure of the program's and in no profile,
//! its parsed debug info is freed after each profile, and only a bounded
//! cache of resolved frames stays (`allocscope_library_held_bytes` counts
//! it; `allocscope_library_allocated_bytes_total` and
//! `allocscope_sampler_resolutions_total` say what the parsing cost).
//!
//! The profiles are as complete as the sampling: turn it on for every
//! thread with
//! [`start_process_sampling`](crate::profile::start_process_sampling) or
//! `ALLOCSCOPE_SAMPLE_RATE`.
//!
//! # Examples
//!
//! ```
//! # #[global_allocator]
//! # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
//! #     allocscope::CountingAlloc::new(std::alloc::System);
//! let route = allocscope::Group::listed("GET /doc/serve");
//! route.run(|| std::hint::black_box(vec![0u8; 128]));
//! let snapshot = allocscope::serve::snapshot();
//! assert!(snapshot.groups.iter().any(|g| g.name == "GET /doc/serve" && g.stats.bytes_allocated == 128));
//! let text = snapshot.prometheus_text();
//! assert!(text.contains("allocscope_group_allocated_bytes_total{group=\"GET /doc/serve\"} 128"), "{text}");
//! ```
//!
//! # Metrics
//!
//! One table, which every exporter reads: names, kinds and labels are the
//! same in the text exposition and through the `metrics` facade.
//!
//! | metric | kind | label | what |
//! |---|---|---|---|
//! | `allocscope_allocs_total` | counter |  | every thread, since the process started: blocks handed out: `alloc`, `alloc_zeroed` and `realloc` calls |
//! | `allocscope_reallocs_total` | counter |  | every thread, since the process started: of those, the `realloc` calls |
//! | `allocscope_deallocs_total` | counter |  | every thread, since the process started: `dealloc` calls |
//! | `allocscope_allocated_bytes_total` | counter |  | every thread, since the process started: requested bytes of the blocks handed out |
//! | `allocscope_freed_bytes_total` | counter |  | every thread, since the process started: bytes of deallocations, plus reallocations' old sizes |
//! | `allocscope_held_bytes` | gauge |  | bytes allocated and not freed yet, every thread |
//! | `allocscope_peak_bytes` | gauge |  | the highest held bytes any reading has seen (a lower bound of the peak) |
//! | `allocscope_op_calls_total` | counter | `op` | calls of the named operation |
//! | `allocscope_op_allocs_total` | counter | `op` | as above, inside the operation, outside the operations nested in it |
//! | `allocscope_op_reallocs_total` | counter | `op` | as above, inside the operation, outside the operations nested in it |
//! | `allocscope_op_deallocs_total` | counter | `op` | as above, inside the operation, outside the operations nested in it |
//! | `allocscope_op_allocated_bytes_total` | counter | `op` | as above, inside the operation, outside the operations nested in it |
//! | `allocscope_op_freed_bytes_total` | counter | `op` | as above, inside the operation, outside the operations nested in it |
//! | `allocscope_group_windows_total` | counter | `group` | ended windows of the listed group (polls, closures, guards) |
//! | `allocscope_group_allocs_total` | counter | `group` | as above, while the group was its thread's innermost |
//! | `allocscope_group_reallocs_total` | counter | `group` | as above, while the group was its thread's innermost |
//! | `allocscope_group_deallocs_total` | counter | `group` | as above, while the group was its thread's innermost |
//! | `allocscope_group_allocated_bytes_total` | counter | `group` | as above, while the group was its thread's innermost |
//! | `allocscope_group_freed_bytes_total` | counter | `group` | as above, while the group was its thread's innermost |
//! | `allocscope_group_held_bytes` | gauge | `group` | what the group holds now, wherever freed: exact with owner tags, else estimated from heap samples, absent when unknown (`Group::held`) |
//! | `allocscope_group_held_blocks` | gauge | `group` | the blocks it holds |
//! | `allocscope_group_peak_bytes` | gauge | `group` | the group's peak (see `Group`) |
//! | `allocscope_jemalloc_allocated_bytes` | gauge |  | jemalloc's `stats.allocated`, when jemalloc serves the allocations |
//! | `allocscope_jemalloc_active_bytes` | gauge |  | jemalloc's `stats.active`, when jemalloc serves the allocations |
//! | `allocscope_jemalloc_resident_bytes` | gauge |  | jemalloc's `stats.resident`, when jemalloc serves the allocations |
//! | `allocscope_jemalloc_mapped_bytes` | gauge |  | jemalloc's `stats.mapped`, when jemalloc serves the allocations |
//! | `allocscope_jemalloc_retained_bytes` | gauge |  | jemalloc's `stats.retained`, when jemalloc serves the allocations |
//! | `allocscope_jemalloc_metadata_bytes` | gauge |  | jemalloc's `stats.metadata`, when jemalloc serves the allocations |
//! | `allocscope_sampler_rate_bytes` | gauge |  | the process-wide heap sampling rate (0: off) |
//! | `allocscope_sampler_samples_total` | counter |  | heap profile samples taken |
//! | `allocscope_sampler_dropped_samples_total` | counter |  | samples that found the stack table full |
//! | `allocscope_sampler_untracked_held_samples_total` | counter |  | samples whose block could not be followed |
//! | `allocscope_sampler_resolved_addresses_total` | counter |  | return addresses the symbolizer resolved (each once while cached) |
//! | `allocscope_sampler_resolutions_total` | counter |  | times the symbolizer parsed the program's debug info (freed after each) |
//! | `allocscope_library_held_bytes` | gauge |  | what allocscope allocated for itself and has not freed (the symbolizer's cache included), in no other figure |
//! | `allocscope_library_allocated_bytes_total` | counter |  | what allocscope allocated for itself since start, the symbolizer's parsing included |
//! | `allocscope_sampler_cached_addresses` | gauge |  | return addresses whose frames the symbolizer keeps |
//!
//! # Security: what the endpoints expose, and to whom
//!
//! Like Go's `net/http/pprof`, the read endpoints expose the program's
//! internals: function names, source paths, allocation patterns, memory
//! figures. Anyone who can reach them can read them. [`start`] binds to
//! loopback (`127.0.0.1`); bind elsewhere, or mount the router on a public
//! server, only behind the authentication the rest of the service has, or
//! on a private port as Go services mount `net/http/pprof`.
//!
//! What a client can do, and what it cannot:
//!
//! - **Read** (`GET`): any client that reaches the port. Each request's
//!   work is bounded: a profile is written by one blocking thread at a
//!   time (at most 16 requests wait for it, further ones get a 503);
//!   `?seconds=N` windows wait on a timer, never on a thread, at most
//!   [`Options::max_windows`] at once (a 503 beyond, naming the limit) and
//!   at most [`MAX_SECONDS`] each. A web page can make a browser send such
//!   GETs, but reads no answer back (no CORS header is ever sent).
//! - **Change the sampling rate** (`PUT /debug/pprof/sample_rate`): only a
//!   request that a web page cannot send to another site without a CORS
//!   preflight, which this server never grants: the method is `PUT` (a
//!   `POST` gets a 405); a request whose `Origin` is not the server's own,
//!   or that a browser marks `Sec-Fetch-Site: cross-site`, gets a 403; so
//!   does one whose `Host` is not an IP address, `localhost` or a name in
//!   [`Options::allowed_hosts`] (a page whose own name resolves to
//!   127.0.0.1, DNS rebinding, cannot use it). The value is digits only,
//!   0 or [`MIN_SAMPLE_RATE`] to [`MAX_SAMPLE_RATE`]; rates below the floor
//!   (down to every allocation) only through the Rust API. A service that
//!   wants no switch at all sets [`Options::sample_rate_switch`] to
//!   `false`.
//! - **Hold connections**: the server that [`start`], [`start_on`] and
//!   [`serve`] run serves at most [`Options::max_connections`] at once and
//!   closes a connection that takes longer than
//!   [`Options::header_read_timeout`] to send a request's headers; when
//!   the process runs out of file descriptors it waits and accepts again.
//!   Mounted on an application's own server instead, the application's
//!   server sets these limits: serve it with [`serve`].
//!
//! HTTP/1.1 requests without `Host` get a 400. Nothing here authenticates
//! a client: a process on the same host, or anyone on a network the port
//! is bound to, can read the profiles and, through the switch, make the
//! service sample more (within the floor).
//!
// Links to what the `serve` and `metrics` features add: with the feature off
// (the docs of a build without it), they lead to the crate's list of
// features, which names it.
#![cfg_attr(not(feature = "metrics"), doc = "[`metrics`]: crate#feature-flags")]
#![cfg_attr(
    feature = "pprof",
    doc = "[`HeapProfile::pprof_gz_addresses_only`]: crate::profile::HeapProfile::pprof_gz_addresses_only"
)]
#![cfg_attr(not(feature = "pprof"), doc = "[`HeapProfile::pprof_gz_addresses_only`]: crate#feature-flags")]
#![cfg_attr(not(feature = "serve"), doc = "[`router`]: crate#feature-flags")]
#![cfg_attr(not(feature = "serve"), doc = "[`start`]: crate#feature-flags")]
#![cfg_attr(not(feature = "serve"), doc = "[`start_on`]: crate#feature-flags")]
#![cfg_attr(not(feature = "serve"), doc = "[`serve`]: crate#feature-flags")]
#![cfg_attr(not(feature = "serve"), doc = "[`MAX_SECONDS`]: crate#feature-flags")]
#![cfg_attr(not(feature = "serve"), doc = "[`MIN_SAMPLE_RATE`]: crate#feature-flags")]
#![cfg_attr(not(feature = "serve"), doc = "[`MAX_SAMPLE_RATE`]: crate#feature-flags")]
#![cfg_attr(not(feature = "serve"), doc = "[`Options::max_windows`]: crate#feature-flags")]
#![cfg_attr(not(feature = "serve"), doc = "[`Options::allowed_hosts`]: crate#feature-flags")]
#![cfg_attr(not(feature = "serve"), doc = "[`Options::sample_rate_switch`]: crate#feature-flags")]
#![cfg_attr(not(feature = "serve"), doc = "[`Options::max_connections`]: crate#feature-flags")]
#![cfg_attr(not(feature = "serve"), doc = "[`Options::header_read_timeout`]: crate#feature-flags")]
mod catalogue;
#[cfg(feature = "serve")]
mod http;
#[cfg(feature = "metrics")]
pub mod metrics;
mod prometheus;
mod snapshot;

#[cfg(feature = "serve")]
pub use http::{
    heap_pprof, metrics_text, router, serve, start, start_on, Options, Server, DEFAULT_ADDR, MAX_SAMPLE_RATE,
    MAX_SECONDS, MIN_SAMPLE_RATE,
};
pub use snapshot::{snapshot, ListedGroup, SamplerStats, Snapshot};
