//! Resolved frames: where each belongs (this library, the standard
//! library, the C runtime's start, or the code under test), their names
//! (generic arguments removed, a module path where the symbol has none),
//! and the frames of the code under test kept and described for a budget
//! site.

use super::Frame;

/// Where a resolved frame belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// This crate, or the global allocator shim that calls it.
    Library,
    /// The standard library.
    Std,
    /// Where the runtime (a `std` thread, `main`, the test harness) starts
    /// the code under test, or the C runtime below it.
    Runtime,
    /// Anything else: the code under test, whatever its name or path.
    User,
}

/// This crate's own source directory, as its frames' files name it.
const OWN_SOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/");

/// The frame's origin, from its symbol name and file. Only exact marks
/// count: this crate's name as the first path segment or its own source
/// directory, names the compiler reserves (the allocator shim), the
/// standard library's crate names and sources, and the runtime's start
/// marker. A user's crate or folder named `allocscope-...` is the user's.
pub(crate) fn origin(name: &str, file: Option<&std::path::Path>) -> Origin {
    let bare = name.strip_prefix('<').unwrap_or(name);
    let shim = name.strip_prefix("__rustc::").unwrap_or(name);
    if bare.starts_with("allocscope::")
        || file.is_some_and(|f| f.starts_with(OWN_SOURCES))
        || ["__rust_alloc", "__rust_alloc_zeroed", "__rust_dealloc", "__rust_realloc"].contains(&shim)
        || shim.starts_with("__rg_")
        || shim.starts_with("__rdl_")
    {
        Origin::Library
    } else if name.ends_with("__rust_begin_short_backtrace")
        || name.contains("__rust_begin_short_backtrace::<")
        || C_RUNTIME.contains(&name)
    {
        Origin::Runtime
    } else if ["std::", "core::", "alloc::"].iter().any(|krate| bare.starts_with(krate))
        || file.is_some_and(|f| STD_SOURCES.iter().any(|dir| f.starts_with(dir)))
    {
        Origin::Std
    } else {
        Origin::User
    }
}

/// Where the standard library's sources are, as rustc records them in its
/// debug info: its own crates under `/rustc/<commit>/library/`, and the
/// crates it vendors (`hashbrown` under `HashMap`, `gimli`, `addr2line`,
/// ...) under `/rust/deps/<crate>-<version>/`. A program's own dependency
/// of the same name (its own `hashbrown`) has a path in its registry, and
/// stays the program's.
const STD_SOURCES: [&str; 2] = ["/rustc/", "/rust/deps/"];

/// The C runtime's frames at the bottom of a stack that has no Rust start
/// marker (a thread the C library started).
const C_RUNTIME: &[&str] = &[
    "_start",
    "__libc_start_main",
    "__libc_start_main_impl",
    "__libc_start_call_main",
    "start_thread",
    "clone3",
    "__clone3",
    "__clone",
];

/// Keeps the frames of the code under test, from resolved frames
/// (innermost first):
///
/// - the top of a stack captured in the allocator is the unwinder, this
///   crate and the allocator shim, then the standard library's allocating
///   code (`RawVec`, ...): everything down to the last library frame of
///   that first run is cut, whatever names the unwinder's frames have;
/// - the bottom, from the runtime's start marker down (std's and the test
///   harness's `__rust_begin_short_backtrace`, as `std`'s own short
///   backtraces do), is cut;
/// - in between, the standard library's and this crate's frames are left
///   out (the iterator adapters, `measure`), and every other frame is kept.
pub(crate) fn keep_user_frames(frames: Vec<(Frame, Origin)>) -> Vec<Frame> {
    let first_library = frames.iter().position(|(_, o)| *o == Origin::Library);
    let top = match first_library {
        Some(first) => {
            let run = frames[first..].iter().take_while(|(_, o)| matches!(o, Origin::Library | Origin::Std)).count();
            let last = frames[first..first + run].iter().rposition(|(_, o)| *o == Origin::Library).unwrap_or(0);
            first + last + 1
        }
        None => 0,
    };
    frames
        .into_iter()
        .skip(top)
        .take_while(|(_, o)| *o != Origin::Runtime)
        .filter(|(_, o)| *o == Origin::User)
        .map(|(f, _)| f)
        .collect()
}

/// `name` without the generic arguments that follow a path segment or a
/// closure (`send<Box<dyn Any>, F>` is `send`, `{closure#0}<T>` is
/// `{closure#0}`); a qualified-self prefix (`<T as Trait>::f`) is kept, and
/// the `>` of an arrow (`fn(A) -> B`) closes nothing.
pub(crate) fn without_generics(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut depth = 0usize;
    // The last character kept at depth 0, and the last one seen.
    let mut kept = ' ';
    let mut last = ' ';
    for c in name.chars() {
        match c {
            '<' if depth > 0 || kept.is_alphanumeric() || kept == '_' || kept == '}' => depth += 1,
            '>' if depth > 0 && last != '-' => depth -= 1,
            _ if depth > 0 => {}
            _ => {
                out.push(c);
                kept = c;
            }
        }
        last = c;
    }
    out
}

/// `name` as pprof shows a function, in the way Go names its methods
/// (`pkg.(*Type).Method`): the path of the type a method belongs to, then
/// the method, without generic arguments. A qualified path `<Type as
/// Trait>::method` is `Type::method` (a generic parameter's, `<F as
/// Trait>::call`, or of a type that is no path, is the trait's:
/// `Trait::call`); `<&mut Type>`, `<dyn
/// Trait>` and raw pointers are their type's. pprof's own display would
/// otherwise cut every `<...>` away, leaving `::method` and merging the
/// methods of one name. The full name stays in the profile's
/// `system_name`.
#[cfg_attr(not(feature = "pprof"), allow(dead_code))] // used by the pprof writer (and tested)
pub(crate) fn go_name(name: &str) -> String {
    let bare = without_generics(name);
    let Some(inner) = bare.strip_prefix('<') else { return bare };
    // The `>` that closes the qualified path (function types inside, as
    // `<fn() -> u8 as app::Call>`, have `->` arrows, not brackets).
    let mut depth = 1usize;
    let mut close = None;
    let mut last = ' ';
    for (i, c) in inner.char_indices() {
        match c {
            '<' => depth += 1,
            '>' if last != '-' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            _ => {}
        }
        last = c;
    }
    let Some(close) = close else { return bare };
    let (qualified, rest) = (&inner[..close], &inner[close + 1..]);
    let (ty, trait_) = match qualified.split_once(" as ") {
        Some((ty, trait_)) => (ty, Some(trait_)),
        None => (qualified, None),
    };
    let ty = ["&mut ", "&", "dyn ", "*const ", "*mut "].iter().fold(ty.trim(), |t, p| t.strip_prefix(p).unwrap_or(t));
    // A generic parameter (`F`, `T`), or a type that is no path (a function
    // pointer, a tuple, a slice), says less than the trait it is used as.
    let is_parameter = !ty.contains("::") && ty.chars().next().is_some_and(char::is_uppercase) && ty.len() <= 2;
    let is_path = ty.chars().all(|c| c.is_alphanumeric() || c == '_' || c == ':');
    let owner = match trait_ {
        Some(t) if is_parameter || !is_path => t,
        _ => ty,
    };
    format!("{owner}{}", go_name_rest(rest))
}

/// The rest of a name after a qualified path, with any further qualified
/// path inside it named as [`go_name`] names one.
fn go_name_rest(rest: &str) -> String {
    match rest.find("::<") {
        Some(i) => format!("{}::{}", &rest[..i], go_name(&rest[i + 2..])),
        None => rest.to_owned(),
    }
}

/// `name` as profiles and messages show it: when the debug info gave only
/// the function's own name (an inlined function in a build with line
/// tables only: `end_string<W>`, `{closure#0}`), it is prefixed with the
/// module path its source file implies (`serde_json::ser::end_string<W>`);
/// names with a path are kept as they are.
pub(crate) fn with_module_path(name: &str, file: Option<&std::path::Path>) -> String {
    if name.starts_with('<') || without_generics(name).contains("::") {
        return name.to_owned();
    }
    match file.and_then(module_path) {
        Some(path) => format!("{path}::{name}"),
        None => name.to_owned(),
    }
}

/// The module path a source file implies, Cargo's layout assumed: the
/// crate is the directory holding `src/` (without a registry version:
/// `serde_json-1.0.154` is `serde_json`; the standard library's
/// `library/core/src` is `core`), or the file's stem for a binary, an
/// example, a benchmark or a test; the modules are the directories and
/// file below, without `lib`, `main` and `mod`. `None` for files outside
/// such a layout.
fn module_path(file: &std::path::Path) -> Option<String> {
    let parts: Vec<&str> = file.iter().filter_map(|c| c.to_str()).collect();
    let root = parts.iter().rposition(|p| matches!(*p, "src" | "examples" | "benches" | "tests"))?;
    let below = &parts[root + 1..];
    let (krate, modules) = match (parts[root], below) {
        ("src", ["bin", target, rest @ ..]) => (target.trim_end_matches(".rs").to_owned(), rest),
        ("src", rest) => (crate_name(parts.get(root.checked_sub(1)?)?), rest),
        (_, [target, rest @ ..]) => (target.trim_end_matches(".rs").to_owned(), rest),
        _ => return None,
    };
    let mut path = vec![krate.replace('-', "_")];
    for (i, m) in modules.iter().enumerate() {
        let m = m.strip_suffix(".rs").unwrap_or(m);
        let last = i + 1 == modules.len();
        if !(m.is_empty() || last && matches!(m, "lib" | "main" | "mod")) {
            path.push(m.replace('-', "_"));
        }
    }
    path.iter().all(|p| p.chars().all(|c| c.is_alphanumeric() || c == '_')).then(|| path.join("::"))
}

/// A crate directory's name without the version a registry appends.
fn crate_name(dir: &str) -> String {
    let version = dir.char_indices().find(|&(i, c)| c == '-' && dir[i + 1..].starts_with(|d: char| d.is_ascii_digit()));
    version.map_or(dir, |(i, _)| &dir[..i]).to_owned()
}

/// What to tell a reader whose build has no line tables.
pub(crate) const NO_LINE_TABLES: &str = "this build has no line tables, so the stack could not be resolved to \
     source lines; add `debug = \"line-tables-only\"` to the Cargo profile it was built with (for \
     `cargo test --release` and `cargo bench`: `[profile.release]` and `[profile.bench]`)";

/// Describes resolved frames of the code under test as lines `  at NAME
/// (FILE:LINE)`, innermost first, at most `max` of them. `Err` carries the
/// reason when none of those frames has a source line: without line
/// tables, release builds inline the code under test into its callers and
/// only the symbol table's names are left.
pub(crate) fn describe_frames(frames: Vec<Frame>, max: usize) -> Result<String, String> {
    let lines = frame_lines(&frames, max);
    if frames.iter().any(|f| f.line != 0) {
        Ok(lines.join("\n"))
    } else if lines.is_empty() {
        Err(NO_LINE_TABLES.to_owned())
    } else {
        Err(format!("{NO_LINE_TABLES}; the functions:\n{}", lines.join("\n")))
    }
}

/// The crate of a dependency's frame (a crate from a registry or a git
/// checkout, by its source path), or `None` for the program's own code.
fn dependency(f: &Frame) -> Option<String> {
    let file = f.file.replace('\\', "/");
    if !(file.contains("/registry/src/") || file.contains("/git/checkouts/")) {
        return None;
    }
    let path = module_path(std::path::Path::new(&f.file));
    Some(path.as_deref().unwrap_or(&f.name).split("::").next().unwrap_or_default().to_owned())
}

/// The lines of a stack: frames of the program's own code count toward
/// `max`, and a run of more than two frames of one dependency shows its
/// innermost frame and a count of the rest (`  … 14 frames in
/// regex_automata …`), so that the lines always reach the first frame of
/// the program's own code and two beyond, however deep the dependency's
/// stack above it (a cache a library builds on first use, a parser).
fn frame_lines(frames: &[Frame], max: usize) -> Vec<String> {
    // Files under the current directory are shown relative to it, as
    // rustc and cargo show them (`src/main.rs:12`), not with the absolute
    // path of the checkout.
    // (Miri's isolation has no current directory: paths stay absolute.)
    let cwd = if cfg!(miri) { None } else { std::env::current_dir().ok() };
    let shown = |file: &str| {
        let relative = cwd.as_deref().and_then(|d| std::path::Path::new(file).strip_prefix(d).ok());
        relative.map_or_else(|| file.to_owned(), |r| r.display().to_string())
    };
    let line = |f: &Frame| {
        if f.line == 0 {
            format!("  at {}", f.name)
        } else {
            format!("  at {} ({}:{})", f.name, shown(&f.file), f.line)
        }
    };
    let mut lines = Vec::new();
    // Set at the first frame of the program's own code: the lines end at
    // `max`, or two frames past that one, whichever comes later.
    let mut limit: Option<usize> = None;
    let mut i = 0;
    while i < frames.len() {
        if limit.is_some_and(|l| lines.len() >= l) {
            break;
        }
        match dependency(&frames[i]) {
            Some(krate) => {
                let run = frames[i..].iter().take_while(|f| dependency(f).as_deref() == Some(krate.as_str())).count();
                if run > 2 {
                    lines.push(line(&frames[i]));
                    lines.push(format!("  … {} frames in {krate} …", run - 1));
                } else {
                    lines.extend(frames[i..i + run].iter().map(line));
                }
                i += run;
            }
            None => {
                limit.get_or_insert(max.max(lines.len() + 3));
                lines.push(line(&frames[i]));
                i += 1;
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str, file: &str, line: u32) -> (Frame, Origin) {
        let path = (!file.is_empty()).then(|| std::path::Path::new(file));
        let f = Frame { address: 0, name: name.to_owned(), file: file.to_owned(), line };
        let o = origin(name, path);
        (f, o)
    }

    fn names(frames: &[Frame]) -> Vec<&str> {
        frames.iter().map(|f| f.name.as_str()).collect()
    }

    /// A stack as a budget trip captures it in a debug build, abridged: the
    /// unwinder, this crate, the shim, std's allocating code, the user's
    /// three functions (one through an iterator adapter), the runtime.
    #[test]
    fn the_top_and_bottom_machinery_is_cut_and_every_user_frame_kept() {
        let own = |f: &str| format!("{OWN_SOURCES}{f}");
        let stack = vec![
            frame(
                "backtrace::backtrace::libunwind::trace",
                "/registry/backtrace-0.3.77/src/backtrace/libunwind.rs",
                117,
            ),
            frame("allocscope::stack::capture", &own("stack.rs"), 25),
            frame("std::thread::local::LocalKey<T>::with", "/rustc/abc/library/std/src/thread/local.rs", 477),
            frame(
                "<allocscope::alloc::CountingAlloc<A> as core::alloc::global::GlobalAlloc>::alloc",
                &own("alloc.rs"),
                97,
            ),
            frame("__rustc::__rust_alloc", "/home/me/app/src/main.rs", 3),
            frame(
                "alloc::raw_vec::RawVecInner<A>::try_allocate_in",
                "/rustc/abc/library/alloc/src/raw_vec/mod.rs",
                464,
            ),
            frame("app::inner", "/home/me/allocscope-demo/src/main.rs", 5),
            frame("core::iter::traits::iterator::Iterator::collect", "/rustc/abc/library/core/src/iter.rs", 2064),
            frame("allocscope_demo::outer::{{closure}}", "/home/me/allocscope-demo/src/lib.rs", 7),
            frame("allocscope::scope::measure", &own("scope.rs"), 290),
            frame("app::main", "/home/me/allocscope-demo/src/main.rs", 12),
            frame(
                "std::sys::backtrace::__rust_begin_short_backtrace",
                "/rustc/abc/library/std/src/sys/backtrace.rs",
                166,
            ),
            frame("std::rt::lang_start::{{closure}}", "/rustc/abc/library/std/src/rt.rs", 206),
            frame("main", "", 0),
            frame("__libc_start_call_main", "./csu/libc_start_call_main.h", 58),
        ];
        let kept = keep_user_frames(stack);
        assert_eq!(names(&kept), ["app::inner", "allocscope_demo::outer::{{closure}}", "app::main"]);
        assert!(kept[0].file.contains("allocscope-demo"), "a user's folder named allocscope-... stays the user's");
    }

    /// The same capture in a release build without line tables (what
    /// `cargo test --release` produced with the default profile): names
    /// from the symbol table only, the user's outer functions inlined away,
    /// the test harness below.
    #[test]
    fn without_line_tables_the_message_says_so_instead_of_naming_the_test_harness() {
        let stack = vec![
            frame("backtrace::backtrace::libunwind::trace", "", 0),
            frame("allocscope::counters::trip::check", "", 0),
            frame("__rustc::__rust_alloc", "", 0),
            frame("budget_site::innermost_allocation", "", 0),
            frame("budget_site::middle_layer", "", 0),
            frame("test::__rust_begin_short_backtrace::<core::result::Result<(), alloc::string::String>, fn()>", "", 0),
            frame("test::run_test::{closure#0}", "", 0),
        ];
        let described = describe_frames(keep_user_frames(stack), 8).unwrap_err();
        assert!(described.starts_with(NO_LINE_TABLES), "{described}");
        assert!(described
            .ends_with("the functions:\n  at budget_site::innermost_allocation\n  at budget_site::middle_layer"));
        assert!(!described.contains("test::"), "{described}");
        let inlined_away = vec![
            frame("__rustc::__rust_alloc", "", 0),
            frame("test::__rust_begin_short_backtrace::<core::result::Result<(), alloc::string::String>, fn()>", "", 0),
            frame("test::run_test::{closure#0}", "", 0),
        ];
        let nothing = describe_frames(keep_user_frames(inlined_away), 8);
        assert_eq!(nothing.unwrap_err(), NO_LINE_TABLES);
    }

    #[test]
    fn a_deep_dependency_stack_is_elided_down_to_the_users_code() {
        let registry =
            |krate: &str, file: &str| format!("/root/.cargo/registry/src/index.crates.io-1/{krate}/src/{file}");
        let mut frames = vec![Frame {
            address: 0,
            name: "regex_automata::util::pool::Pool::get".into(),
            file: registry("regex-automata-0.4.9", "util/pool.rs"),
            line: 1,
        }];
        for i in 0..14 {
            frames.push(Frame {
                address: 0,
                name: format!("regex_automata::meta::f{i}"),
                file: registry("regex-automata-0.4.9", "meta/mod.rs"),
                line: 2 + i,
            });
        }
        frames.push(Frame {
            address: 0,
            name: "regex::Regex::new".into(),
            file: registry("regex-1.11.1", "regex.rs"),
            line: 9,
        });
        for name in ["app::compile", "app::handle", "app::serve", "app::main"] {
            frames.push(Frame { address: 0, name: name.into(), file: "/home/me/app/src/main.rs".into(), line: 3 });
        }
        let lines = frame_lines(&frames, 8);
        assert_eq!(
            lines,
            [
                format!(
                    "  at regex_automata::util::pool::Pool::get ({}:1)",
                    registry("regex-automata-0.4.9", "util/pool.rs")
                ),
                "  … 14 frames in regex_automata …".to_owned(),
                format!("  at regex::Regex::new ({}:9)", registry("regex-1.11.1", "regex.rs")),
                "  at app::compile (/home/me/app/src/main.rs:3)".to_owned(),
                "  at app::handle (/home/me/app/src/main.rs:3)".to_owned(),
                "  at app::serve (/home/me/app/src/main.rs:3)".to_owned(),
                "  at app::main (/home/me/app/src/main.rs:3)".to_owned(),
            ]
        );
        // A cap of 2 still reaches the program's code and two beyond it.
        assert_eq!(frame_lines(&frames, 2).len(), 6);
        // Without dependencies: the cap, and never fewer than the first
        // frame and two beyond.
        assert_eq!(frame_lines(&frames[16..], 4).len(), 4);
        assert_eq!(frame_lines(&frames[16..], 2).len(), 3);
    }

    #[test]
    fn generic_arguments_go_with_arrows_closures_and_nesting_handled() {
        assert_eq!(without_generics("queue::send<alloc::boxed::Box<dyn Any>, F>"), "queue::send");
        assert_eq!(
            without_generics("<queue::Baseline as queue::Queue>::enqueue"),
            "<queue::Baseline as queue::Queue>::enqueue"
        );
        assert_eq!(
            without_generics("<serde_json::ser::Compound<W, F> as serde::ser::SerializeMap>::serialize_entry<str, V>"),
            "<serde_json::ser::Compound as serde::ser::SerializeMap>::serialize_entry"
        );
        assert_eq!(without_generics("run<queue::baseline::Baseline>::{closure#0}"), "run::{closure#0}");
        assert_eq!(
            without_generics(
                "poll<core::result::Result<u8, E>, fn(core::result::Result<u8, E>) -> core::result::Result<u16, E>>"
            ),
            "poll"
        );
        assert_eq!(without_generics("{closure#0}<(), allocscope::op::{closure_env#0}<F>>"), "{closure#0}");
        assert_eq!(without_generics("<fn() -> u8 as app::Call>::call"), "<fn() -> u8 as app::Call>::call");
    }

    #[test]
    fn pprof_names_say_whose_method_it_is_as_go_does() {
        assert_eq!(go_name("serde_json::map::Map::insert"), "serde_json::map::Map::insert");
        assert_eq!(go_name("<serde_json::map::Map as core::ops::Index<&str>>::index"), "serde_json::map::Map::index");
        assert_eq!(
            go_name("<&mut serde_json::ser::Serializer<W, F> as serde_core::ser::Serializer>::serialize_seq"),
            "serde_json::ser::Serializer::serialize_seq"
        );
        assert_eq!(
            go_name("<serde_json::ser::Compound<W, F> as serde::ser::SerializeMap>::serialize_entry<str, V>"),
            "serde_json::ser::Compound::serialize_entry"
        );
        assert_eq!(
            go_name("<F as axum::handler::Handler<T, S>>::call::{{closure}}"),
            "axum::handler::Handler::call::{{closure}}"
        );
        assert_eq!(go_name("<alloc::vec::Vec<T, A>>::push"), "alloc::vec::Vec::push");
        assert_eq!(go_name("<dyn core::any::Any>::downcast_ref<T>"), "core::any::Any::downcast_ref");
        assert_eq!(go_name("service::build_report::{{closure}}"), "service::build_report::{{closure}}");
        assert_eq!(go_name("<fn() -> u8 as app::Call>::call"), "app::Call::call");
        // Two impls of one trait method stay apart.
        assert_ne!(
            go_name("<u32 as serde::Serialize>::serialize"),
            go_name("<alloc::string::String as serde::Serialize>::serialize")
        );
    }

    #[test]
    fn names_without_a_path_get_their_files_module_path() {
        let registry = "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/serde_json-1.0.154/src/ser.rs";
        let name = |n: &str, f: &str| with_module_path(n, Some(std::path::Path::new(f)));
        assert_eq!(name("end_string<W>", registry), "serde_json::ser::end_string<W>");
        assert_eq!(name("serde_json::ser::Formatter::end_string", registry), "serde_json::ser::Formatter::end_string");
        assert_eq!(name("read<*const app::Ledger>", "/home/me/app/src/held.rs"), "app::held::read<*const app::Ledger>");
        assert_eq!(
            name("poll<F>", "/root/.cargo/registry/src/x/futures-util-0.3.31/src/future/future/map.rs"),
            "futures_util::future::future::map::poll<F>"
        );
        assert_eq!(name("poll", "/rustc/0123abcd/library/core/src/future/future.rs"), "core::future::future::poll");
        assert_eq!(name("{closure#0}", "/work/alloc-tracker/examples/service.rs"), "service::{closure#0}");
        assert_eq!(name("handle", "/work/app/src/net/mod.rs"), "app::net::handle");
        assert_eq!(name("main", "/work/app/src/main.rs"), "app::main");
        assert_eq!(name("run", "/work/app/src/bin/tool.rs"), "tool::run");
        assert_eq!(name("build", "/work/tikv-jemalloc-sys-0.6.1+5.3.0/src/lib.rs"), "tikv_jemalloc_sys::build");
        assert_eq!(name("go", "/tmp/generated.rs"), "go");
        assert_eq!(with_module_path("go", None), "go");
    }

    #[test]
    fn only_exact_marks_make_a_frame_the_librarys() {
        let user = std::path::Path::new("/home/me/allocscope-work/src/lib.rs");
        assert_eq!(origin("allocscope_demo::parse", Some(user)), Origin::User);
        assert_eq!(origin("<allocscope_demo::Parser as core::iter::Iterator>::next", Some(user)), Origin::User);
        assert_eq!(origin("my_backtrace::walk", Some(user)), Origin::User);
        assert_eq!(origin("<allocscope::op::OpGuard as core::ops::drop::Drop>::drop", None), Origin::Library);
        assert_eq!(origin("__rustc::__rust_realloc", Some(user)), Origin::Library);
        assert_eq!(origin("<alloc::vec::Vec<T> as core::clone::Clone>::clone", None), Origin::Std);
        assert_eq!(origin("<app::Msg as core::clone::Clone>::clone", Some(user)), Origin::User);
        // std's vendored crates are std's; the program's own hashbrown is
        // the program's.
        let vendored = std::path::Path::new("/rust/deps/hashbrown-0.16.1/src/raw/mod.rs");
        assert_eq!(origin("hashbrown::raw::RawTable<T,A>::reserve", Some(vendored)), Origin::Std);
        let own =
            std::path::Path::new("/home/me/.cargo/registry/src/index.crates.io-1/hashbrown-0.15.2/src/raw/mod.rs");
        assert_eq!(origin("hashbrown::raw::RawTable<T,A>::reserve", Some(own)), Origin::User);
        // The C runtime's start, as the ELF symbol table names it (glibc's
        // versioned `__libc_start_main`) and as its debug info does.
        for start in ["__libc_start_main", "__libc_start_main_impl", "__libc_start_call_main", "_start"] {
            assert_eq!(origin(start, None), Origin::Runtime, "{start}");
        }
    }
}
