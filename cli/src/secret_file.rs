//! Writing a secret (the rotated refresh token) the way a database writes its log: a crash at
//! any moment leaves either the old or the new content, never neither, and the file is never
//! readable by other users.
//!
//! Steps: create `.NAME.tmp-PID` beside the file with mode 0600 (exclusive), write, fsync,
//! rename over the file, fsync the folder. A reader sees the old file until the rename, and
//! the new one after it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// The environment variable that names a step after which the process aborts, so tests can
/// kill it between the steps: `created`, `written`, `synced` or `renamed`.
pub(crate) const FAILPOINT_ENV: &str = "GENESYS_NOTIFY_FAILPOINT";

fn failpoint(step: &str) {
    if std::env::var(FAILPOINT_ENV).is_ok_and(|v| v == step) {
        // A crash as abrupt as a power cut for this process: no destructors, no flushing.
        std::process::abort();
    }
}

fn temp_path(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".tmp-{}", std::process::id()));
    Ok(path.with_file_name(tmp))
}

fn create_private(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    o.open(path)
}

/// Replaces the content of `path` with `contents`, atomically and durably.
pub(crate) fn replace(path: &Path, contents: &str) -> io::Result<()> {
    let tmp = temp_path(path)?;
    // A temporary file left by a crashed run of this same process id is stale.
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut f = create_private(&tmp)?;
        failpoint("created");
        f.write_all(contents.as_bytes())?;
        failpoint("written");
        f.sync_all()?;
        failpoint("synced");
        drop(f);
        fs::rename(&tmp, path)?;
        failpoint("renamed");
        sync_parent(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn sync_parent(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_with_a_private_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("gn-secret-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("refresh-token");
        fs::write(&path, "old").unwrap();
        replace(&path, "new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{mode:o}");
        }
        let left: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "only the file itself remains");
        fs::remove_dir_all(&dir).unwrap();
    }
}
