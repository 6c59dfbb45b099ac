//! Files written whole or not at all: the bytes go to a temporary file beside the target,
//! which is then renamed over it. A process killed at any moment leaves the target absent (or
//! as it was) or complete, never half written, and at worst a stray `*.tmp` file that readers
//! skip. The files are not synced to disk: this guards against a killed process, not a power
//! cut.

use std::path::{Path, PathBuf};

/// The suffix of a temporary file; readers of a folder skip names ending in it.
pub const TEMP_SUFFIX: &str = ".tmp";

/// Writes `bytes` to `path` atomically (temporary file, then rename), creating its folder.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(folder) = path
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
    {
        std::fs::create_dir_all(folder)?;
    }
    let temp = temp_path(path);
    std::fs::write(&temp, bytes)?;
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

/// `path` with `.<pid>.tmp` appended: two processes writing the same file never share one.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}{TEMP_SUFFIX}", std::process::id()));
    PathBuf::from(name)
}

/// Whether `path` is a temporary file [`write`] left behind.
pub fn is_temp(path: &Path) -> bool {
    path.to_str()
        .is_some_and(|name| name.ends_with(TEMP_SUFFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_whole_file_and_leaves_no_temporary_file() {
        let folder = std::env::temp_dir().join(format!("atomic-file-{}", std::process::id()));
        let path = folder.join("sub").join("f.json");
        write(&path, b"first, longer").expect("written");
        write(&path, b"second").expect("written");
        assert_eq!(std::fs::read(&path).expect("read"), b"second");
        let names: Vec<PathBuf> = std::fs::read_dir(path.parent().expect("folder"))
            .expect("listed")
            .map(|entry| entry.expect("entry").path())
            .collect();
        assert_eq!(names, vec![path.clone()]);
        assert!(is_temp(&temp_path(&path)) && !is_temp(&path));
        std::fs::remove_dir_all(folder).expect("cleaned");
    }
}
