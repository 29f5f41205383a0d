//! A mirror folder that nothing can write outside of.
//!
//! Every path Cairn writes into a destination folder goes through a
//! [`Folder`]. It holds an open handle on the folder and resolves each path
//! one segment at a time beneath it (`cap-std`, which uses `openat2` with
//! `RESOLVE_BENEATH` where the system has it), opening every folder on the way
//! without following links and every file with `O_NOFOLLOW`. So a link planted
//! inside the mirror (a collection folder pointing at `/home`, a `.part` file
//! pointing at someone's document) is refused in words, never written
//! through, and a `..` cannot climb out: by construction, not by checking a
//! path string and hoping it still holds when the file is opened.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, OpenOptions};

/// A destination folder, opened once.
#[derive(Debug)]
pub struct Folder {
    root: PathBuf,
    dir: Dir,
}

/// What a link inside a mirror is told.
const LINK: &str = "it is a link, and Cairn never follows links inside a mirror (they could lead outside it); remove the link, then run the job again";

impl Folder {
    /// Opens `root`, making it (and its parents) first if needed. The path to
    /// the folder is the user's own choice and may pass through links; below
    /// it, nothing does.
    pub fn open(root: &Path) -> io::Result<Folder> {
        std::fs::create_dir_all(root)?;
        let dir = Dir::open_ambient_dir(root, cap_std::ambient_authority())?;
        Ok(Folder {
            root: root.to_path_buf(),
            dir,
        })
    }

    /// Where the folder is, for messages and for the system's own tools.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The full path of `relative`, for messages.
    pub fn display(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// The folder that holds `relative` (made when `create`), and the name of
    /// `relative` in it. Each segment is opened without following links.
    fn parent(&self, relative: &str, create: bool) -> io::Result<(Dir, String)> {
        let segments = segments(relative)?;
        let (name, folders) = segments
            .split_last()
            .ok_or_else(|| invalid(relative, "it is empty"))?;
        let mut current = self.dir.try_clone()?;
        for segment in folders {
            let next = match current.open_dir_nofollow(segment) {
                Err(error) if create && error.kind() == io::ErrorKind::NotFound => {
                    match current.create_dir(segment) {
                        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                        _ => current.open_dir_nofollow(segment),
                    }
                }
                other => other,
            };
            current = next.map_err(|error| explain(&current, segment, error))?;
        }
        Ok((current, (*name).to_string()))
    }

    fn open_with(
        &self,
        relative: &str,
        options: &mut OpenOptions,
        create: bool,
    ) -> io::Result<std::fs::File> {
        let (dir, name) = self.parent(relative, create)?;
        options.follow(FollowSymlinks::No);
        dir.open_with(&name, options)
            .map(cap_std::fs::File::into_std)
            .map_err(|error| explain(&dir, &name, error))
    }

    /// Creates (or empties) the file at `relative` for writing.
    pub fn create(&self, relative: &str) -> io::Result<std::fs::File> {
        self.open_with(
            relative,
            OpenOptions::new().write(true).create(true).truncate(true),
            true,
        )
    }

    /// Opens the existing file at `relative` to add to its end.
    pub fn append(&self, relative: &str) -> io::Result<std::fs::File> {
        self.open_with(relative, OpenOptions::new().append(true), false)
    }

    /// Opens the existing file at `relative` for writing in place.
    pub fn modify(&self, relative: &str) -> io::Result<std::fs::File> {
        self.open_with(relative, OpenOptions::new().write(true), false)
    }

    /// Opens the file at `relative` for reading.
    pub fn read_file(&self, relative: &str) -> io::Result<std::fs::File> {
        self.open_with(relative, OpenOptions::new().read(true), false)
    }

    /// The size of the file at `relative`; a link or a folder there is an error.
    pub fn file_len(&self, relative: &str) -> io::Result<u64> {
        let (dir, name) = self.parent(relative, false)?;
        let meta = dir.symlink_metadata(&name)?;
        if meta.file_type().is_symlink() {
            return Err(io::Error::other(LINK));
        }
        if !meta.is_file() {
            return Err(invalid(relative, "it is not a file"));
        }
        Ok(meta.len())
    }

    /// Whether a file (not a link, not a folder) is at `relative`.
    pub fn has_file(&self, relative: &str) -> bool {
        self.file_len(relative).is_ok()
    }

    /// Renames `from` to `to`; both must be in one folder. A link at `to` is
    /// replaced, not followed.
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (dir, from_name) = self.parent(from, false)?;
        let (to_dir_name, to_name) = to.rsplit_once('/').unwrap_or(("", to));
        let from_dir_name = from.rsplit_once('/').map_or("", |(d, _)| d);
        if from_dir_name != to_dir_name {
            return Err(invalid(to, "a rename must stay in its folder"));
        }
        dir.rename(&from_name, &dir, to_name)
    }

    /// Removes the file (or link) at `relative`, if there is one.
    pub fn remove(&self, relative: &str) -> io::Result<()> {
        let (dir, name) = self.parent(relative, false)?;
        match dir.remove_file(&name) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Reads the whole file at `relative`.
    pub fn read(&self, relative: &str) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.read_file(relative)?.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Writes `bytes` at `relative` atomically: `relative.tmp`, then a rename.
    pub fn write_atomic(&self, relative: &str, bytes: &[u8]) -> io::Result<()> {
        let temporary = format!("{relative}.tmp");
        let mut file = self.create(&temporary)?;
        file.write_all(bytes)?;
        drop(file);
        self.rename(&temporary, relative)
    }

    /// Flushes the folder that holds `relative` to disk (its entries: names
    /// added by a rename).
    pub fn sync_parent(&self, relative: &str) -> io::Result<()> {
        let (dir, _) = self.parent(relative, false)?;
        dir.into_std_file().sync_all()
    }
}

/// The segments of a relative path, refusing anything that is not a plain
/// name: Cairn's own paths never hold such segments, so one that does came
/// from a damaged or hostile record.
fn segments(relative: &str) -> io::Result<Vec<&str>> {
    let segments: Vec<&str> = relative.split('/').collect();
    for segment in &segments {
        if segment.is_empty()
            || *segment == "."
            || *segment == ".."
            || segment.contains(['\\', '\0'])
            || (cfg!(windows) && segment.contains(':'))
        {
            return Err(invalid(
                relative,
                "it is not a plain path inside the mirror (empty, `.` or `..` segments, or separators)",
            ));
        }
    }
    Ok(segments)
}

fn invalid(relative: &str, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{relative:?} cannot be used: {why}"),
    )
}

/// A plain sentence for an error at `name` in `dir`: a link found where a
/// folder or a file should be is said as such.
fn explain(dir: &Dir, name: &str, error: io::Error) -> io::Error {
    if error.kind() == io::ErrorKind::NotFound {
        return error;
    }
    match dir.symlink_metadata(name) {
        Ok(meta) if meta.file_type().is_symlink() => io::Error::other(LINK),
        Ok(meta) if !meta.is_dir() && error.kind() == io::ErrorKind::NotADirectory => {
            io::Error::other("a file stands where a folder of the mirror should be")
        }
        _ => error,
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn files_are_written_beneath_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let folder = Folder::open(&dir.path().join("mirror")).unwrap();
        folder.write_atomic("c/i/i.json", b"{}").unwrap();
        assert_eq!(folder.read("c/i/i.json").unwrap(), b"{}");
        assert_eq!(folder.file_len("c/i/i.json").unwrap(), 2);
        assert!(!folder.has_file("c/i/i.json.tmp"));
        for bad in [
            "../x",
            "c/../../x",
            "/etc/passwd",
            "c//x",
            "c/./x",
            "a\\..\\b",
            "",
        ] {
            let error = folder.create(bad).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn links_inside_the_folder_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("precious"), b"mine").unwrap();
        let root = dir.path().join("mirror");
        let folder = Folder::open(&root).unwrap();
        // A folder link and a file link, both leading out.
        symlink(&outside, root.join("c")).unwrap();
        std::fs::create_dir(root.join("d")).unwrap();
        symlink(outside.join("precious"), root.join("d/a.tif.part")).unwrap();
        let error = folder.create("c/i/a.tif").unwrap_err();
        assert!(error.to_string().contains("never follows links"), "{error}");
        let error = folder.create("d/a.tif.part").unwrap_err();
        assert!(error.to_string().contains("never follows links"), "{error}");
        assert!(folder.read("d/a.tif.part").is_err());
        assert!(!folder.has_file("d/a.tif.part"));
        // A rename replaces a link at the target; it does not write through it.
        symlink(outside.join("precious"), root.join("d/b.tif")).unwrap();
        folder.write_atomic("d/b.tif", b"new").unwrap();
        assert_eq!(std::fs::read(outside.join("precious")).unwrap(), b"mine");
        assert_eq!(folder.read("d/b.tif").unwrap(), b"new");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    }
}
