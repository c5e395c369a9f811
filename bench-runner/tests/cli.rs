//! The CLI as a user meets it: exit codes 0/1/2, one-line errors that name
//! the bad input, a small real run, and the regression gate.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn runner(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bench-runner")).args(args).output().expect("bench-runner runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bench-runner-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Exit 2 with exactly this one line on stderr.
fn assert_bad_input(args: &[&str], line: &str) {
    let o = runner(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err, format!("bench-runner: {line}\n"), "{args:?}");
}

/// A small real run into `dir`.
fn small_run(dir: &Path, extra: &[&str]) -> Output {
    let out = dir.to_str().unwrap();
    let mut args = vec!["run", "--messages", "3000", "--warmup", "3000", "--repeat", "3", "--out", out, "--quiet"];
    args.extend_from_slice(extra);
    runner(&args)
}

#[test]
fn bad_flags_and_values_exit_2_with_one_line_naming_them() {
    assert_bad_input(&["run", "--bogus"], "unexpected argument '--bogus' found (see --help)");
    assert_bad_input(&["frobnicate"], "unrecognized subcommand 'frobnicate' (see --help)");
    assert_bad_input(
        &["run", "--variant", "ring"],
        "invalid value 'ring' for '--variant <NAME>' [possible values: baseline, pooled, batched, lockfree] \
         (see --help)",
    );
    assert_bad_input(
        &["run", "--messages", "0"],
        "invalid value '0' for '--messages <N>': must be at least 1 (see --help)",
    );
    assert_bad_input(
        &["run", "--messages", "lots"],
        "invalid value 'lots' for '--messages <N>': \"lots\" is not a whole number (see --help)",
    );
    assert_bad_input(
        &["run", "--messages", "-5"],
        "invalid value '-5' for '--messages <N>': must be at least 1 (see --help)",
    );
    assert_bad_input(
        &["run", "--warmup", "-5"],
        "invalid value '-5' for '--warmup <N>': must be 0 or more (see --help)",
    );
    assert_bad_input(
        &["run", "--repeat", "0"],
        "invalid value '0' for '--repeat <R>': must be at least 1 (see --help)",
    );
    assert_bad_input(
        &["run", "--payload-bytes", "64-32"],
        "invalid value '64-32' for '--payload-bytes <B|MIN-MAX>': \"64-32\": the minimum is larger than the maximum \
         (see --help)",
    );
    assert_bad_input(
        &["run", "--format", "pdf"],
        "invalid value 'pdf' for '--format <FORMAT>' [possible values: json, md, html, benchfmt] (see --help)",
    );
    assert_bad_input(&["compare"], "the following required arguments were not provided: <FILE>... (see --help)");
    assert_bad_input(
        &["compare", "a.json", "b.json", "c.json"],
        "unexpected value 'c.json' for '<FILE>...' found; no more were expected (see --help)",
    );
    assert_bad_input(
        &["compare", "a.json", "b.json", "--max-regression", "-3"],
        "invalid value '-3' for '--max-regression <PCT>': \"-3\" is not a non-negative percentage (see --help)",
    );
    // The default build has no dhat profiler to run under.
    if cfg!(not(feature = "dhat")) {
        assert_bad_input(
            &["run", "--dhat", "--variant", "baseline"],
            "--dhat needs a build with the dhat feature: \
             cargo run --release -p bench-runner --features dhat -- run --dhat --variant NAME",
        );
    }
}

#[test]
fn unusable_report_files_exit_2_naming_the_file_and_the_cause_once() {
    let d = temp_dir("files");
    let missing = d.join("missing.json");
    let corrupt = d.join("corrupt.json");
    let wrong = d.join("wrong-schema.json");
    let no_schema = d.join("no-schema.json");
    std::fs::write(&corrupt, "{ not json").unwrap();
    std::fs::write(&wrong, r#"{"schema": 99}"#).unwrap();
    std::fs::write(&no_schema, "{}").unwrap();
    let cases = [
        (&missing, "cannot read {}: No such file or directory (os error 2)"),
        (&corrupt, "{} is not a bench-runner report: key must be a string at line 1 column 3"),
        (
            &wrong,
            "{} has report schema 99; this bench-runner reads schemas 2 to 3 (in schema 1 the per-operation \
             allocs_per_op left reallocations out): run the study again with this bench-runner to compare with it",
        ),
        (&no_schema, "{} is not a bench-runner report: no \"schema\" field"),
    ];
    for (file, line) in cases {
        let f = file.to_str().unwrap();
        let line = line.replace("{}", f);
        assert_bad_input(&["compare", f, f], &line);
        assert_bad_input(&["run", "--baseline", f], &line);
    }
}

#[test]
fn an_unwritable_out_directory_exits_2() {
    let d = temp_dir("unwritable");
    let file = d.join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = file.join("reports");
    assert_bad_input(
        &["run", "--out", out.to_str().unwrap()],
        &format!("cannot create output directory {}: Not a directory (os error 20)", out.display()),
    );
}

#[test]
fn help_and_version_exit_0() {
    for args in [&["--help"][..], &["run", "--help"], &["compare", "--help"], &["--version"]] {
        let o = runner(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(!o.stdout.is_empty());
    }
    let help = String::from_utf8(runner(&["run", "--help"]).stdout).unwrap();
    assert!(help.contains("Examples:") && help.contains("Exit codes: 0 success, 1 regression"), "{help}");
}

#[test]
fn a_small_run_reports_exact_allocations_and_compares_clean_then_catches_a_regression() {
    let d = temp_dir("run");
    let (a, b) = (d.join("a"), d.join("b"));
    let o = small_run(&a, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "--quiet: nothing on stderr, got {}", stderr(&o));
    for f in ["report.json", "report.md", "report.html", "bench.txt"] {
        assert!(a.join(f).is_file(), "{f} written");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["schema"], 3);
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 8, "4 variants x 2 modes");
    // The Go row says where it comes from; its times, in parentheses, are
    // not compared with ours; exact figures print as themselves.
    let md = std::fs::read_to_string(a.join("report.md")).unwrap();
    assert!(
        md.contains(
            "| Go MemoryQueue (reference) | - \
             | (2.6 M) | (376) | 152 | - | 4 | - | - | - |"
        ),
        "{md}"
    );
    assert!(md.contains("**Note:** The Go MemoryQueue row is the source material's: another machine and runtime; its times, in parentheses, are not comparable with ours."), "{md}");
    assert!(md.contains(", payload 32 B; "), "a fixed payload prints as one size:\n{md}");
    let pair = md.lines().find(|l| l.starts_with("| baseline | pair |")).unwrap();
    let cells: Vec<&str> = pair.split(" | ").collect();
    assert_eq!((cells[4], cells[6], cells[9].trim_end_matches(" |")), ("120", "4", "reference"), "{pair}");
    for r in results {
        let (variant, mode) = (r["variant"].as_str().unwrap(), r["mode"].as_str().unwrap());
        // The leak check: nothing the run allocated is live once it has
        // drained, in either mode (the run's own result rows excluded).
        assert_eq!(r["held_after_drain_bytes"], 0, "{variant} {mode}");
        let allocs = r["allocs_per_op"].as_f64().unwrap();
        let bytes = r["bytes_per_op"].as_f64().unwrap();
        match (variant, mode) {
            ("baseline", "pair") => assert_eq!((allocs, bytes), (4.0, 120.0), "{variant} {mode}"),
            (_, "pair") => assert_eq!((allocs, bytes), (0.0, 0.0), "{variant} {mode}"),
            // Threads mode: a new channel's waiter list grows the first time
            // a thread blocks on it, a few allocations per run against 3,000
            // messages; the pools are prefilled, so they do not grow.
            ("baseline", _) => assert!((4.0..4.01).contains(&allocs), "{variant} {mode}: {allocs}"),
            _ => assert!(allocs < 0.01, "{variant} {mode}: {allocs}"),
        }
    }
    let bench = std::fs::read_to_string(a.join("bench.txt")).unwrap();
    assert!(bench.contains("BenchmarkQueue/pooled/pair-"), "{bench}");
    assert!(std::fs::read_to_string(a.join("report.html")).unwrap().contains("<svg"));

    // Two runs of the same build: no false alarm.
    let o = small_run(&b, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (ja, jb) = (a.join("report.json"), b.join("report.json"));
    let o = runner(&["compare", ja.to_str().unwrap(), jb.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", String::from_utf8_lossy(&o.stdout), stderr(&o));

    // Doubled allocs/op for pooled: exit 1, naming the variant and metric.
    let mut doctored = json.clone();
    for r in doctored["results"].as_array_mut().unwrap() {
        if r["variant"] == "baseline" {
            r["allocs_per_op"] = serde_json::json!(8.0);
        }
    }
    let bad = d.join("doctored.json");
    std::fs::write(&bad, serde_json::to_string(&doctored).unwrap()).unwrap();
    let o = runner(&["compare", ja.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines[0], "regression: baseline (pair): allocs/op 4 -> 8 (+100%) grew (exact comparison)", "{err}");
    assert!(lines[1].starts_with("regression: baseline (threads): allocs/op 4"), "{err}");
    assert!(lines[1].ends_with(" -> 8 (+100%) grew by more than 0.01"), "{err}");

    // A report of another workload (payload 0 instead of 32): refused with
    // exit 2 and one line naming the difference, unless asked for.
    let mut other = json.clone();
    other["workload"]["payload_bytes"] = serde_json::json!({ "min": 0, "max": 0 });
    let other_path = d.join("other-workload.json");
    std::fs::write(&other_path, serde_json::to_string(&other).unwrap()).unwrap();
    assert_bad_input(
        &["compare", ja.to_str().unwrap(), other_path.to_str().unwrap()],
        &format!(
            "{} measured a different workload (payload_bytes 32 vs 0): its figures are not comparable; pass \
             --different-workloads to compare anyway",
            ja.display()
        ),
    );
    let o = runner(&["compare", ja.to_str().unwrap(), other_path.to_str().unwrap(), "--different-workloads"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines().next().unwrap().starts_with(
            "note: the baseline measured a different workload (payload_bytes 32 vs 0); compared as \
             --different-workloads asks"
        ),
        "{out}"
    );

    // One FILE, from a directory without reports/: the committed baseline
    // of the workspace the runner was built from.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_bench-runner"))
        .args(["compare", ja.to_str().unwrap()])
        .current_dir(&d)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.code().is_some_and(|c| c < 2), "{out}\n{}", stderr(&o));
    assert!(out.contains("variant") && out.contains("geomean"), "{out}");
}

#[test]
fn a_failing_run_leaves_the_previous_report_intact() {
    let d = temp_dir("intact");
    let o = small_run(&d, &["--variant", "pooled", "--mode", "pair"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let before = std::fs::read(d.join("report.json")).unwrap();
    let corrupt = d.join("corrupt-baseline.json");
    std::fs::write(&corrupt, "[]").unwrap();
    let o = small_run(&d, &["--variant", "baseline", "--baseline", corrupt.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(d.join("report.json")).unwrap(), before);
}

#[test]
fn heap_profiles_name_the_baselines_four_allocations() {
    let d = temp_dir("heap");
    let out = d.to_str().unwrap();
    let o = runner(&[
        "run",
        "--variant",
        "baseline",
        "--variant",
        "lockfree",
        "--mode",
        "pair",
        "--messages",
        "2000",
        "--warmup",
        "1500",
        "--repeat",
        "1",
        "--heap-profile",
        "--sample-rate",
        "1",
        "--out",
        out,
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for f in ["heap.pb.gz", "heap.folded", "flamegraph.svg", "dhat-heap.json"] {
        assert!(d.join("baseline").join(f).is_file(), "baseline/{f}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("report.json")).unwrap()).unwrap();
    let baseline = json["results"].as_array().unwrap().iter().find(|r| r["variant"] == "baseline").unwrap();
    let mut sites: Vec<(String, f64, f64)> = baseline["top_sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["function"].as_str().unwrap().to_owned(),
                s["allocs_per_op"].as_f64().unwrap(),
                s["bytes_per_op"].as_f64().unwrap(),
            )
        })
        .collect();
    sites.sort_by(|a, b| b.2.total_cmp(&a.2));
    // Rate 1: every allocation sampled, figures exact.
    let expected = [("boxed", 64.0), ("copied_from", 32.0), ("copied_from", 16.0), ("boxed", 8.0)];
    assert_eq!(sites.len(), 4, "{sites:?}");
    for ((name, allocs, bytes), (want, want_bytes)) in sites.iter().zip(expected) {
        assert!(name.ends_with(want), "{sites:?}");
        assert_eq!((*allocs, *bytes), (1.0, want_bytes), "{sites:?}");
    }
    // The profile's own figures: every one of the 2,000 messages' 4
    // allocations sampled, nothing dropped or left unfollowed.
    let p = &baseline["heap_profile"];
    assert_eq!((p["sample_rate"].as_u64(), p["samples"].as_u64()), (Some(1), Some(8000)), "{p}");
    assert_eq!((p["dropped_samples"].as_u64(), p["untracked_held_samples"].as_u64()), (Some(0), Some(0)));
    let md = std::fs::read_to_string(d.join("report.md")).unwrap();
    assert!(md.contains("baseline: 8000 samples at 1 per 1 bytes; 0 dropped"), "{md}");
    let lockfree = json["results"].as_array().unwrap().iter().find(|r| r["variant"] == "lockfree").unwrap();
    // The warm-up wrote every one of the ring's 1024 slots: steady state.
    assert!(lockfree.get("top_sites").is_none(), "no allocation in steady state, no site: {lockfree}");
    // Frames carry their file and line: the two copies in one function
    // stay two sites.
    let folded = std::fs::read_to_string(d.join("baseline/heap.folded")).unwrap();
    for frame in ["copied_from (queue/src/message.rs:41)", "copied_from (queue/src/message.rs:42)", "boxed (queue/src/"]
    {
        assert!(folded.contains(frame), "{frame} in\n{folded}");
    }
    let svg = std::fs::read_to_string(d.join("baseline/flamegraph.svg")).unwrap();
    assert!(svg.contains("copied_from"));
    assert_eq!(p["scale"], serde_json::json!([1.0, 1.0]), "rate 1: nothing to scale");
    assert!(md.contains("| ≈1 | ≈64 | exact | 2000 |"), "{md}");
    let html = std::fs::read_to_string(d.join("report.html")).unwrap();
    assert!(html.contains("End-to-end latency, pair mode (logarithmic axis)"), "one latency chart per mode");

    // Sampled: the sites are estimates, scaled to add up to the exact
    // totals of the pass (4 allocations and 120 bytes per message).
    let d = temp_dir("heap-sampled");
    let o = small_run(&d, &["--variant", "baseline", "--mode", "pair", "--heap-profile", "--sample-rate", "997"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("report.json")).unwrap()).unwrap();
    let sites = json["results"][0]["top_sites"].as_array().unwrap();
    let sum = |key: &str| sites.iter().map(|s| s[key].as_f64().unwrap()).sum::<f64>();
    assert!((sum("allocs_per_op") - 4.0).abs() < 1e-9, "{sites:?}");
    assert!((sum("bytes_per_op") - 120.0).abs() < 1e-9, "{sites:?}");
    let md = std::fs::read_to_string(d.join("report.md")).unwrap();
    assert!(md.contains("so that the sites add up to the pass's exact totals"), "{md}");
    assert!(md.contains("| allocs/op (est.) | B/op (est.) | 95% interval | samples |"), "{md}");
}

#[test]
fn repeats_in_child_processes_run_the_whole_plan() {
    // Every workload flag must reach the children: a 40-byte id and a
    // 100-byte payload make the baseline's message 64 + 40 + 100 + 8 bytes.
    let d = temp_dir("children");
    let out = d.to_str().unwrap();
    let o = runner(&[
        "run",
        "--variant",
        "baseline",
        "--mode",
        "pair",
        "--id-bytes",
        "40",
        "--payload-bytes",
        "100",
        "--messages",
        "2000",
        "--warmup",
        "1000",
        "--repeat",
        "2",
        "--out",
        out,
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["workload"]["separate_processes"], true);
    assert_eq!(json["workload"]["repeats"], 2);
    let r = &json["results"][0];
    assert_eq!((r["allocs_per_op"].as_f64(), r["bytes_per_op"].as_f64()), (Some(4.0), Some(212.0)));
    assert_eq!(r["ns_per_op"]["samples"].as_array().unwrap().len(), 2, "one time sample per child");
}

#[test]
fn markdown_json_and_html_spell_variants_and_modes_alike_and_show_the_same_rows() {
    let d = temp_dir("spelling");
    let out = d.to_str().unwrap();
    let o = runner(&[
        "run",
        "--variant",
        "lockfree",
        "--variant",
        "baseline",
        "--messages",
        "2000",
        "--warmup",
        "2000",
        "--repeat",
        "1",
        "--out",
        out,
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("report.json")).unwrap()).unwrap();
    let md = std::fs::read_to_string(d.join("report.md")).unwrap();
    let html = std::fs::read_to_string(d.join("report.html")).unwrap();
    for r in json["results"].as_array().unwrap() {
        let (variant, mode) = (r["variant"].as_str().unwrap(), r["mode"].as_str().unwrap());
        assert!(md.contains(&format!("| {variant} | {mode} |")), "{variant} {mode} in report.md:\n{md}");
        assert!(
            html.contains(&format!("<td class=\"l\">{variant}</td><td class=\"l\">{mode}</td>")),
            "{variant} {mode} in report.html"
        );
    }
    // The same tables: as many data rows in the HTML as in the Markdown.
    let md_rows = md.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| variant")).count();
    let html_rows = html.matches("<tr><td").count();
    assert_eq!(md_rows, html_rows);
}

#[test]
fn threads_mode_counts_each_operation_through_groups_with_several_producers_and_consumers() {
    let d = temp_dir("groups");
    let out = d.to_str().unwrap();
    let o = runner(&[
        "run",
        "--variant",
        "baseline",
        "--variant",
        "lockfree",
        "--mode",
        "threads",
        "--producers",
        "4",
        "--consumers",
        "4",
        "--messages",
        "20000",
        "--warmup",
        "4000",
        "--repeat",
        "1",
        "--out",
        out,
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("report.json")).unwrap()).unwrap();
    for r in json["results"].as_array().unwrap() {
        let op = |name: &str| r["ops"].as_array().unwrap().iter().find(|o| o["name"] == name).cloned().unwrap();
        let (enqueue, dequeue) = (op("enqueue"), op("dequeue"));
        assert_eq!((enqueue["calls"].as_u64(), dequeue["calls"].as_u64()), (Some(20_000), Some(20_000)));
        let f = |o: &serde_json::Value, k: &str| o[k].as_f64().unwrap();
        // A few allocations per run depend on scheduling (a channel's
        // waiter list grows the first time a thread blocks on it): 0.01
        // allocs/op is far above that, far below one per message.
        if r["variant"] == "baseline" {
            assert!((4.0..4.01).contains(&f(&enqueue, "allocs_per_op")), "{enqueue}");
            assert!((120.0..121.0).contains(&f(&enqueue, "bytes_per_op")), "{enqueue}");
            assert!((4.0..4.01).contains(&f(&dequeue, "deallocs_per_op")), "{dequeue}");
            assert!(f(&dequeue, "allocs_per_op") < 0.01, "{dequeue}");
        } else {
            assert!(f(&enqueue, "allocs_per_op") < 0.01 && f(&dequeue, "allocs_per_op") < 0.01, "{r}");
        }
    }
    let md = std::fs::read_to_string(d.join("report.md")).unwrap();
    assert!(md.contains("| baseline | threads | enqueue | 20000 |"), "{md}");
}
