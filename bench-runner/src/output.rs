//! Files written all or nothing: each file is first written in full under a
//! temporary name beside its target and synced, and only when every one is
//! complete are they renamed over the previous ones. An interrupted or
//! failed run never leaves a half-written file, and never replaces a set of
//! files with part of a new one. The reports and the heap profiles are
//! written this way.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Writes `files` (name, contents) into `dir`, creating it; returns the
/// paths written.
///
/// # Errors
///
/// When `dir` cannot be created or a file cannot be written or renamed; the
/// temporary files are removed, and the previous files stay as they were
/// unless the failure came while renaming.
pub fn write_all_or_nothing(dir: &Path, files: &[(&str, &[u8])]) -> anyhow::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create output directory {}", dir.display()))?;
    let mut staged = Vec::new();
    let result = (|| {
        for &(name, body) in files {
            let target = dir.join(name);
            let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
            staged.push((tmp.clone(), target));
            let mut f = fs::File::create(&tmp).with_context(|| format!("cannot write to {}", dir.display()))?;
            f.write_all(body).with_context(|| format!("cannot write {}", tmp.display()))?;
            f.sync_all().with_context(|| format!("cannot write {}", tmp.display()))?;
        }
        anyhow::Ok(())
    })();
    if let Err(e) = result {
        for (tmp, _) in &staged {
            let _ = fs::remove_file(tmp);
        }
        return Err(e);
    }
    let mut written = Vec::new();
    for (tmp, target) in staged {
        fs::rename(&tmp, &target).with_context(|| format!("cannot replace {}", target.display()))?;
        written.push(target);
    }
    Ok(written)
}
