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
//!
//! Two more things planted in a mirror are met before a file is opened: a
//! pipe or a device (which would block an open, or never end) is refused in
//! words; a file with other names (a hard link to a file elsewhere) is never
//! written in place: its name is removed and a new file made, so the other
//! names keep their bytes.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use cap_fs_ext::{DirExt, FollowSymlinks, MetadataExt, OpenOptionsFollowExt};
use cap_std::fs::{Dir, OpenOptions};

/// A destination folder, opened once.
#[derive(Debug)]
pub struct Folder {
    root: PathBuf,
    dir: Dir,
}

/// The error for a link found at `at` (a path inside the mirror).
fn link(at: &str) -> io::Error {
    io::Error::other(format!(
        "{at:?} in the mirror is a link, and Cairn never follows links inside a mirror (they could lead outside it); remove the link, then run the job again"
    ))
}

/// What stands at a name before it is opened.
#[derive(Debug, PartialEq, Eq)]
enum Existing {
    Nothing,
    /// A regular file with no other name.
    File,
    /// A regular file with other names too (a hard link).
    Shared,
}

/// What stands at `name` in `dir` (`at` in the mirror): a link, or anything
/// but a regular file, is refused in words.
fn existing(dir: &Dir, name: &str, at: &str) -> io::Result<Existing> {
    match dir.symlink_metadata(name) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Existing::Nothing),
        Err(e) => Err(e),
        Ok(meta) if meta.file_type().is_symlink() => Err(link(at)),
        Ok(meta) if !meta.is_file() => Err(io::Error::other(format!(
            "{at:?} in the mirror is not a regular file (a folder, a pipe or a device); Cairn does not open it. Remove it, then run the job again"
        ))),
        Ok(meta) if meta.nlink() > 1 => Ok(Existing::Shared),
        Ok(_) => Ok(Existing::File),
    }
}

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
        let mut current: Option<Dir> = None;
        for (n, segment) in folders.iter().enumerate() {
            let here = current.as_ref().unwrap_or(&self.dir);
            let next = match here.open_dir_nofollow(segment) {
                Err(error) if create && error.kind() == io::ErrorKind::NotFound => {
                    match here.create_dir(segment) {
                        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                        _ => here.open_dir_nofollow(segment),
                    }
                }
                other => other,
            };
            let next =
                next.map_err(|error| explain(here, segment, &folders[..=n].join("/"), error))?;
            current = Some(next);
        }
        let dir = match current {
            Some(dir) => dir,
            None => self.dir.try_clone()?,
        };
        Ok((dir, (*name).to_string()))
    }

    fn open_with(
        &self,
        relative: &str,
        options: &mut OpenOptions,
        mode: Mode,
    ) -> io::Result<std::fs::File> {
        let create = mode == Mode::Create;
        let (dir, name) = self.parent(relative, create)?;
        match existing(&dir, &name, relative)? {
            // Written in place, a file with other names would change them
            // too: a new file takes its name instead.
            Existing::Shared if create => dir.remove_file(&name)?,
            Existing::Shared if mode == Mode::Write => {
                return Err(io::Error::other(format!(
                    "{relative:?} in the mirror has other names (a hard link); Cairn does not write into it"
                )));
            }
            Existing::Nothing if !create => {
                return Err(io::Error::from(io::ErrorKind::NotFound));
            }
            _ => {}
        }
        options.follow(FollowSymlinks::No);
        dir.open_with(&name, options)
            .map(cap_std::fs::File::into_std)
            .map_err(|error| explain(&dir, &name, relative, error))
    }

    /// Creates (or empties) the file at `relative` for writing.
    pub fn create(&self, relative: &str) -> io::Result<std::fs::File> {
        self.open_with(
            relative,
            OpenOptions::new().write(true).create(true).truncate(true),
            Mode::Create,
        )
    }

    /// Opens the existing file at `relative` to add to its end.
    pub fn append(&self, relative: &str) -> io::Result<std::fs::File> {
        self.open_with(relative, OpenOptions::new().append(true), Mode::Write)
    }

    /// Opens the existing file at `relative` for writing in place.
    pub fn modify(&self, relative: &str) -> io::Result<std::fs::File> {
        self.open_with(relative, OpenOptions::new().write(true), Mode::Write)
    }

    /// Opens the file at `relative` for reading.
    pub fn read_file(&self, relative: &str) -> io::Result<std::fs::File> {
        self.open_with(relative, OpenOptions::new().read(true), Mode::Read)
    }

    /// The size of the regular file at `relative` (one with other names too,
    /// as backups that share files by hard links have, can be read); a link,
    /// a folder or a pipe there is an error.
    pub fn file_len(&self, relative: &str) -> io::Result<u64> {
        let (dir, name) = self.parent(relative, false)?;
        match existing(&dir, &name, relative)? {
            Existing::Nothing => Err(io::Error::from(io::ErrorKind::NotFound)),
            Existing::Shared | Existing::File => Ok(dir.symlink_metadata(&name)?.len()),
        }
    }

    /// The size of the file at `relative` when it can be written in place:
    /// one with other names (a hard link) cannot, and is an error.
    pub fn own_len(&self, relative: &str) -> io::Result<u64> {
        let (dir, name) = self.parent(relative, false)?;
        match existing(&dir, &name, relative)? {
            Existing::Nothing => Err(io::Error::from(io::ErrorKind::NotFound)),
            Existing::Shared => Err(io::Error::other(format!(
                "{relative:?} in the mirror has other names (a hard link); Cairn does not write into it"
            ))),
            Existing::File => Ok(dir.symlink_metadata(&name)?.len()),
        }
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

/// How a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Made or emptied, with its folders.
    Create,
    /// Written in place (it must exist).
    Write,
    /// Read (it must exist).
    Read,
}

/// A plain sentence for an error at `name` in `dir` (`at` in the mirror):
/// a link found where a folder or a file should be is said as such.
fn explain(dir: &Dir, name: &str, at: &str, error: io::Error) -> io::Error {
    if error.kind() == io::ErrorKind::NotFound {
        return error;
    }
    match dir.symlink_metadata(name) {
        Ok(meta) if meta.file_type().is_symlink() => link(at),
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

    #[test]
    fn hard_links_and_pipes_inside_the_folder_are_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("precious");
        std::fs::write(&outside, b"mine").unwrap();
        let root = dir.path().join("mirror");
        let folder = Folder::open(&root).unwrap();
        std::fs::hard_link(&outside, root.join("a.tif.part")).unwrap();
        // Not taken as the mirror's, not resumed, and replaced when made anew.
        assert!(folder.own_len("a.tif.part").is_err());
        assert_eq!(folder.file_len("a.tif.part").unwrap(), 4);
        assert!(folder.append("a.tif.part").is_err());
        assert!(folder.modify("a.tif.part").is_err());
        std::io::Write::write_all(&mut folder.create("a.tif.part").unwrap(), b"new").unwrap();
        assert_eq!(std::fs::read(&outside).unwrap(), b"mine");
        assert_eq!(folder.read("a.tif.part").unwrap(), b"new");
        std::fs::hard_link(&outside, root.join("c.json.tmp")).unwrap();
        folder.write_atomic("c.json", b"{}").unwrap();
        assert_eq!(std::fs::read(&outside).unwrap(), b"mine");
        // A pipe would block the open: refused at once.
        let fifo = root.join("b.tif.part");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        for error in [
            folder.create("b.tif.part").unwrap_err(),
            folder.read_file("b.tif.part").unwrap_err(),
            folder.file_len("b.tif.part").unwrap_err(),
        ] {
            assert!(error.to_string().contains("not a regular file"), "{error}");
        }
    }
}
