//! Writing a secret (the rotated refresh token) the way a database writes its log: a crash at
//! any moment leaves either the old or the new content, never neither, and the file is never
//! readable by other users.
//!
//! Steps: create `.NAME.tmp-PID-RANDOM` beside the file with mode 0600 (exclusively: a name
//! someone else created is never used, and the random part cannot be guessed ahead), write,
//! fsync, rename over the file, fsync the folder. A reader sees the old file until the rename,
//! and the new one after it.
//!
//! The file and its folder must be this user's own and writable by nobody else (another user
//! who can write either can replace the token); a file readable by others is used with a
//! warning. A symbolic link is written through: the file it points to is replaced, and the
//! link stays. Temporary files a crashed run left beside the file are removed at start.

use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher as _, Hasher as _};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// The environment variable that names a step after which the process aborts, so tests can
/// kill it between the steps: `created`, `written`, `synced` or `renamed`.
pub(crate) const FAILPOINT_ENV: &str = "GENESYS_NOTIFY_FAILPOINT";

/// Names tried before giving up when every one is taken.
const NAME_TRIES: u32 = 16;

fn failpoint(step: &str) {
    if std::env::var(FAILPOINT_ENV).is_ok_and(|v| v == step) {
        // A crash as abrupt as a power cut for this process: no destructors, no flushing.
        std::process::abort();
    }
}

/// The start of every temporary name beside `path`: `.NAME.tmp-`.
fn temp_prefix(path: &Path) -> io::Result<std::ffi::OsString> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(".tmp-");
    Ok(tmp)
}

/// 64 bits no other user can predict: the standard library seeds each `RandomState` from the
/// operating system's random source.
fn unpredictable() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
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

/// Creates a temporary file beside `path` under a fresh unpredictable name.
fn create_temp(path: &Path) -> io::Result<(PathBuf, File)> {
    let prefix = temp_prefix(path)?;
    let mut last = None;
    for _ in 0..NAME_TRIES {
        let mut name = prefix.clone();
        name.push(format!("{}-{:016x}", std::process::id(), unpredictable()));
        let tmp = path.with_file_name(name);
        match create_private(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// The file a write to `path` replaces: `path` itself, or the file a symbolic link points to
/// (so that the link stays a link).
fn target(path: &Path) -> io::Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path),
        Ok(_) | Err(_) => Ok(path.to_owned()),
    }
}

fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A secret file [`check`] accepted.
#[derive(Debug)]
pub(crate) struct Checked {
    /// The file a write replaces: the one given, or the target of its symbolic link.
    pub(crate) file: PathBuf,
    /// Warnings for the operator (a file others can read).
    pub(crate) warnings: Vec<String>,
}

/// Refuses a secret file (or its folder) that another user controls: one owned by someone
/// else, or writable by the group or others. A file readable by others is allowed with a
/// warning. The error says what to change.
pub(crate) fn check(path: &Path) -> Result<Checked, String> {
    let file = target(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut warnings = Vec::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let me = nix::unistd::geteuid().as_raw();
        let folder = folder_of(&file);
        let dir = fs::metadata(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        if dir.uid() != me {
            return Err(format!(
                "the folder {} of {} belongs to another user, who could replace the token: keep it in a folder of your own",
                folder.display(),
                path.display()
            ));
        }
        if dir.mode() & 0o200 == 0 {
            return Err(format!(
                "the folder {} of {} is not writable (mode {:o}): a rotated token could not be saved beside it; chmod u+w it",
                folder.display(),
                path.display(),
                dir.mode() & 0o7777
            ));
        }
        if dir.mode() & 0o022 != 0 {
            return Err(format!(
                "the folder {} of {} is writable by other users (mode {:o}), who could replace the token: chmod go-w it or use a private folder",
                folder.display(),
                path.display(),
                dir.mode() & 0o7777
            ));
        }
        match fs::metadata(&file) {
            Ok(m) => {
                if m.uid() != me {
                    return Err(format!(
                        "{} belongs to another user: the refresh-token file must be your own",
                        path.display()
                    ));
                }
                if m.mode() & 0o022 != 0 {
                    return Err(format!(
                        "{} is writable by other users (mode {:o}): chmod 600 it",
                        path.display(),
                        m.mode() & 0o777
                    ));
                }
                if m.mode() & 0o044 != 0 {
                    warnings.push(format!(
                        "{} is readable by other users (mode {:o}): chmod 600 it; it is rewritten 0600 at the next rotation",
                        path.display(),
                        m.mode() & 0o777
                    ));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Ok(Checked { file, warnings })
}

/// Removes the temporary files a crashed run left beside `file` (a [`Checked::file`]): this
/// user's regular files named `.NAME.tmp-…`. Returns how many it removed.
pub(crate) fn clean_stale(file: &Path) -> usize {
    let Ok(prefix) = temp_prefix(file) else {
        return 0;
    };
    let Ok(entries) = fs::read_dir(folder_of(file)) else {
        return 0;
    };
    let prefix = prefix.to_string_lossy().into_owned();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let Ok(m) = entry.path().symlink_metadata() else {
            continue;
        };
        #[cfg(unix)]
        let mine = {
            use std::os::unix::fs::MetadataExt as _;
            m.uid() == nix::unistd::geteuid().as_raw()
        };
        #[cfg(not(unix))]
        let mine = true;
        if m.file_type().is_file() && mine && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Replaces the content of `path` with `contents`, atomically and durably, after
/// [`check`]ing it (a refused file is left as it is).
pub(crate) fn replace(path: &Path, contents: &str) -> Result<(), String> {
    let file = check(path)?.file;
    write_and_rename(&file, contents).map_err(|e| format!("{}: {e}", path.display()))
}

fn write_and_rename(path: &Path, contents: &str) -> io::Result<()> {
    let (tmp, mut f) = create_temp(path)?;
    let result = (|| {
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
    File::open(folder_of(path))?.sync_all()?;
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A private folder of this test's own.
    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gn-secret-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        }
        dir
    }

    /// A private folder holding `refresh-token` (mode 0600, content "old").
    fn token_file(name: &str) -> (PathBuf, PathBuf) {
        let dir = folder(name);
        let path = dir.join("refresh-token");
        fs::write(&path, "old").unwrap();
        #[cfg(unix)]
        chmod(&path, 0o600);
        (dir, path)
    }

    #[cfg(unix)]
    fn chmod(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn replaces_content_with_a_private_file_and_leaves_no_temporary() {
        let (dir, path) = token_file("replace");
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

    #[test]
    fn a_temporary_name_someone_created_ahead_does_not_block_a_rotation() {
        let (dir, path) = token_file("squat");
        // The name the old scheme used, and a few more a squatter might guess.
        let squatted = dir.join(format!(".refresh-token.tmp-{}", std::process::id()));
        fs::write(&squatted, "not yours").unwrap();
        replace(&path, "new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::read_to_string(&squatted).unwrap(), "not yours");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_file_or_folder_others_can_write_is_refused_and_one_they_can_read_is_warned_about() {
        let (dir, path) = token_file("modes");
        assert!(check(&path).unwrap().warnings.is_empty());

        chmod(&path, 0o644);
        let warnings = check(&path).unwrap().warnings;
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("readable by other users"),
            "{warnings:?}"
        );

        chmod(&path, 0o666);
        let e = check(&path).unwrap_err();
        assert!(
            e.contains("writable by other users") && e.contains("chmod 600"),
            "{e}"
        );
        assert!(replace(&path, "new").is_err());
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "old",
            "a refused file is left"
        );

        chmod(&path, 0o600);
        chmod(&dir, 0o777);
        let e = check(&path).unwrap_err();
        assert!(
            e.contains("folder") && e.contains("writable by other users"),
            "{e}"
        );
        // A folder its owner cannot write into: a rotated token could never be saved.
        chmod(&dir, 0o500);
        let e = check(&path).unwrap_err();
        assert!(e.contains("not writable") && e.contains("u+w"), "{e}");
        chmod(&dir, 0o700);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_file_of_another_user_is_refused() {
        // /etc/passwd belongs to root; a test run as root uses a folder root does not own.
        if nix::unistd::geteuid().is_root() {
            let dir = folder("owner");
            let path = dir.join("refresh-token");
            fs::write(&path, "old").unwrap();
            chmod(&path, 0o600);
            std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
            let e = check(&path).unwrap_err();
            assert!(e.contains("another user"), "{e}");
            std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
            let e = check(&path).unwrap_err();
            assert!(e.contains("folder") && e.contains("another user"), "{e}");
            fs::remove_dir_all(&dir).unwrap();
        } else {
            let e = check(Path::new("/etc/passwd")).unwrap_err();
            assert!(e.contains("another user"), "{e}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_is_written_through_to_its_target() {
        let dir = folder("link");
        let real = dir.join("real-token");
        fs::write(&real, "old").unwrap();
        chmod(&real, 0o600);
        let link = dir.join("refresh-token");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        replace(&link, "new").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
        assert_eq!(fs::read_to_string(&link).unwrap(), "new");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporary_files_left_by_a_crash_are_removed_at_start() {
        let dir = folder("stale");
        let path = dir.join("refresh-token");
        fs::write(&path, "old").unwrap();
        fs::write(dir.join(".refresh-token.tmp-123"), "crashed").unwrap();
        fs::write(dir.join(".refresh-token.tmp-456-00aa"), "crashed").unwrap();
        fs::write(dir.join("other-file"), "kept").unwrap();
        assert_eq!(clean_stale(&path), 2);
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["other-file", "refresh-token"]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
