//! A mirror folder that nothing can write outside of.
//!
//! Every path Cairn writes into a destination folder goes through a
//! [`Folder`]. It holds an open handle on the folder and resolves each path
//! beneath it without following a link: on Linux in one `openat2` call with
//! `RESOLVE_BENEATH` and `RESOLVE_NO_SYMLINKS` (the module `beneath`), elsewhere
//! (and to say in words what stood in the way) one segment at a time
//! (`cap-std`), opening every folder on the way without following links and
//! every file with `O_NOFOLLOW`. So a link planted
//! inside the mirror (a collection folder pointing at `/home`, a `.part` file
//! pointing at someone's document) is refused in words, never written
//! through, and a `..` cannot climb out: by construction, not by checking a
//! path string and hoping it still holds when the file is opened.
//!
//! Two more things planted in a mirror are refused: a pipe or a device
//! (which would block, or never end) is opened without waiting and then
//! refused in words; a file with other names (a hard link to a file
//! elsewhere) is never written in place. Both are judged by the handle once
//! it is open, not by a look before, so nothing can be swapped in between.
//! A file made anew never opens what was at its name: the name is removed
//! and the file made with `O_EXCL`, so the other names of whatever was
//! there keep their bytes.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cap_fs_ext::{DirExt, FollowSymlinks, MetadataExt, OpenOptionsFollowExt, OpenOptionsSyncExt};
use cap_std::fs::{Dir, OpenOptions};

/// A destination folder, opened once.
#[derive(Debug)]
pub struct Folder {
    root: PathBuf,
    dir: Dir,
    /// Folders at its root kept open (see [`Folder::keeping_parents`]);
    /// `None`: each is opened anew.
    parents: Option<Mutex<Parents>>,
    /// Paths are opened in one call where the system can (see `beneath`);
    /// `false` only in tests, for the segment by segment way.
    at_once: bool,
}

/// A folder at the root of a [`Folder`] kept open, with the device and
/// inode that tell it is still the one at its name.
#[derive(Debug)]
struct Kept {
    name: String,
    dir: Arc<Dir>,
    id: (u64, u64),
}

/// The folders kept open, the latest last.
type Parents = Vec<Kept>;

/// Folders a [`Folder`] keeps open at most.
const PARENTS_KEPT: usize = 8;

/// The error for a link found at `at` (a path inside the mirror).
fn link(at: &str) -> io::Error {
    io::Error::other(format!(
        "{at:?} in the mirror is a link, and Cairn never follows links inside a mirror (they could lead outside it); remove the link, then try again"
    ))
}

/// The error for something other than a regular file at `at`.
fn not_regular(at: &str) -> io::Error {
    io::Error::other(format!(
        "{at:?} in the mirror is not a regular file (a folder, a pipe or a device); Cairn does not open it. Remove it, then run the job again"
    ))
}

/// The error for a file at `at` that has other names.
fn shared(at: &str) -> io::Error {
    io::Error::other(format!(
        "{at:?} in the mirror has other names (a hard link); Cairn does not write into it"
    ))
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
            parents: None,
            at_once: true,
        })
    }

    /// This folder, keeping open the few folders at its root that hold the
    /// folders of its files (a collection's folder, for the files of its
    /// items): a run that writes thousands of files into a collection
    /// opens the collection's folder once, and then only looks, for each
    /// file, that its name still leads to that very folder (one `statx`
    /// without following a link, rather than an open and a close). When
    /// the name leads elsewhere it is opened anew, as without keeping: a
    /// link put at its name is refused, another folder moved there is the
    /// one written, a folder removed is made again.
    pub fn keeping_parents(self) -> Folder {
        Folder {
            parents: Some(Mutex::new(Vec::new())),
            ..self
        }
    }

    /// This folder, opening every path one segment at a time, as where the
    /// system cannot open one in one call.
    #[cfg(all(test, unix))]
    fn segment_by_segment(self) -> Folder {
        Folder {
            at_once: false,
            ..self
        }
    }

    /// Where the folder is, for messages and for the system's own tools.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The full path of `relative`, for messages.
    pub fn display(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// The place of the file at `relative`: the folder that holds it (made
    /// when `create`), opened once, each segment without following links.
    pub fn place(&self, relative: &str, create: bool) -> io::Result<Place> {
        let segments = segments(relative)?;
        let (name, folders) = segments
            .split_last()
            .ok_or_else(|| invalid(relative, "it is empty"))?;
        let folder = &relative[..relative.len() - name.len()];
        let path = folder.strip_suffix('/').unwrap_or(folder);
        let (dir, made) = self.open_folders(folders, path, create)?;
        Ok(Place {
            dir,
            made: AtomicBool::new(made),
            folder: folder.to_string(),
            name: (*name).to_string(),
            root: self.root.clone(),
        })
    }

    /// The folder at `relative` beneath this one (`""`: this one), opened
    /// once as a folder of its own, each segment without following links:
    /// many files in it are then reached without going through the
    /// folders above it again. (Its messages name paths beneath it.)
    pub fn sub(&self, relative: &str) -> io::Result<Folder> {
        let dir = match relative {
            "" => self.dir.try_clone()?,
            _ => self.open_folders(&segments(relative)?, relative, false)?.0,
        };
        Ok(Folder {
            root: self.root.join(relative),
            dir,
            parents: None,
            at_once: self.at_once,
        })
    }

    /// Opens the folders `folders` (`path`, as one text) one beneath the
    /// other (making them when `create`), never following a link; the last
    /// one is returned, with whether this call made it.
    fn open_folders(&self, folders: &[&str], path: &str, create: bool) -> io::Result<(Dir, bool)> {
        if let Some(opened) = self.open_folders_at_once(folders, path, create) {
            return Ok(opened);
        }
        let (Some(kept), [first, _, ..]) = (&self.parents, folders) else {
            return open_each(&self.dir, folders, 0, create);
        };
        let (top, was_kept) = self.top_folder(kept, first, create, false)?;
        match open_each(&top, folders, 1, create) {
            // A kept handle the file system no longer honours (a network
            // file system's stale handle, a folder removed in between):
            // opened anew, once.
            Err(_) if was_kept => {
                let (top, _) = self.top_folder(kept, first, create, true)?;
                open_each(&top, folders, 1, create)
            }
            opened => opened,
        }
    }

    /// The folders `folders` opened in one call where the system can (see
    /// `beneath`); one missing at the end is made (when `create`) in the
    /// folder above it (an item's folder, in its collection's). `None`: not
    /// done so, for the segment by segment way to do (and to say in words
    /// what stands in the way: a link, a file where a folder should be, a
    /// folder to make higher up).
    #[cfg(target_os = "linux")]
    fn open_folders_at_once(
        &self,
        folders: &[&str],
        path: &str,
        create: bool,
    ) -> Option<(Dir, bool)> {
        use rustix::fs::OFlags;
        let (last, above) = folders.split_last().filter(|_| self.at_once)?;
        let open = |path: &str| beneath::open(&self.dir, path, OFlags::DIRECTORY);
        match open(path)? {
            Ok(dir) => return Some((Dir::from(dir), false)),
            Err(error) if create && error.kind() == io::ErrorKind::NotFound => {}
            Err(_) => return None,
        }
        // The folder above: the collection's kept one when it is (one look
        // that it is still at its name), else opened in one call too.
        let parent = match (above, &self.parents) {
            ([], _) => None,
            ([first], Some(kept)) => Some(self.top_folder(kept, first, true, false).ok()?.0),
            _ => Some(Arc::new(Dir::from(
                open(&path[..path.len() - last.len() - 1])?.ok()?,
            ))),
        };
        let here = parent.as_deref().unwrap_or(&self.dir);
        let made = match here.create_dir(last) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(_) => return None,
        };
        let dir = here.open_dir_nofollow(last).ok()?;
        Some((dir, made))
    }

    #[cfg(not(target_os = "linux"))]
    fn open_folders_at_once(&self, _: &[&str], _: &str, _: bool) -> Option<(Dir, bool)> {
        None
    }

    /// The folder `name` at the root, open, and whether it was the one
    /// kept: that one while the name still leads to it (not to a link put
    /// in its place, nor to another folder moved there, nor to nothing)
    /// and not `anew`, else one opened anew and kept. A file system whose
    /// folders do not keep their identity (their device and inode differ
    /// from one look to the next) gets nothing kept.
    fn top_folder(
        &self,
        kept: &Mutex<Parents>,
        name: &str,
        create: bool,
        anew: bool,
    ) -> io::Result<(Arc<Dir>, bool)> {
        let id_at_name = || {
            self.dir
                .symlink_metadata(name)
                .ok()
                .map(|meta| (meta.dev(), meta.ino()))
        };
        let lock = || kept.lock().unwrap_or_else(|e| e.into_inner());
        let here = id_at_name();
        {
            let mut kept = lock();
            if let Some(at) = kept.iter().position(|k| k.name == name) {
                let found = kept.remove(at);
                if Some(found.id) == here && !anew {
                    // The latest used goes last: the first is the one
                    // let go when there are too many.
                    let dir = found.dir.clone();
                    kept.push(found);
                    return Ok((dir, true));
                }
            }
        }
        let dir = open_each(&self.dir, &[name], 0, create)?.0;
        let meta = dir.dir_metadata()?;
        let id = (meta.dev(), meta.ino());
        let dir = Arc::new(dir);
        if id_at_name() == Some(id) {
            let mut kept = lock();
            kept.retain(|k| k.name != name);
            if kept.len() >= PARENTS_KEPT {
                kept.remove(0);
            }
            kept.push(Kept {
                name: name.to_string(),
                dir: dir.clone(),
                id,
            });
        }
        Ok((dir, false))
    }

    /// Makes the file at `relative` anew (empty) for writing, with its folders.
    pub fn create(&self, relative: &str) -> io::Result<std::fs::File> {
        let place = self.place(relative, true)?;
        place.create(&place.name)
    }

    /// Opens the existing file at `relative` to add to its end.
    pub fn append(&self, relative: &str) -> io::Result<std::fs::File> {
        let place = self.place(relative, false)?;
        place.append(&place.name)
    }

    /// Opens the existing file at `relative` for writing in place.
    pub fn modify(&self, relative: &str) -> io::Result<std::fs::File> {
        let place = self.place(relative, false)?;
        place.modify(&place.name)
    }

    /// Opens the file at `relative` for reading.
    pub fn read_file(&self, relative: &str) -> io::Result<std::fs::File> {
        if let Some((file, _)) = self.file_at_once(relative) {
            return Ok(file);
        }
        let place = self.place(relative, false)?;
        place.read_file(&place.name)
    }

    /// The regular file at `relative` opened for reading in one call where
    /// the system can (see `beneath`), with its size. `None`: not done so,
    /// for the segment by segment way to do, and to say why in words.
    #[cfg(target_os = "linux")]
    fn file_at_once(&self, relative: &str) -> Option<(std::fs::File, u64)> {
        use rustix::fs::OFlags;
        if !self.at_once || !relative.split('/').all(is_plain) {
            return None;
        }
        // A pipe does not block the open.
        let fd = beneath::open(&self.dir, relative, OFlags::RDONLY | OFlags::NONBLOCK)?.ok()?;
        let file = std::fs::File::from(fd);
        let meta = file.metadata().ok()?;
        meta.is_file().then_some((file, meta.len()))
    }

    #[cfg(not(target_os = "linux"))]
    fn file_at_once(&self, _: &str) -> Option<(std::fs::File, u64)> {
        None
    }

    /// The size of the regular file at `relative`: see [`Place::file_len`].
    pub fn file_len(&self, relative: &str) -> io::Result<u64> {
        let place = self.place(relative, false)?;
        place.file_len(&place.name)
    }

    /// The size of the file at `relative` when it can be written in place:
    /// see [`Place::own_len`].
    pub fn own_len(&self, relative: &str) -> io::Result<u64> {
        let place = self.place(relative, false)?;
        place.own_len(&place.name)
    }

    /// Whether a file (not a link, not a folder) is at `relative`.
    pub fn has_file(&self, relative: &str) -> bool {
        self.file_len(relative).is_ok()
    }

    /// Renames `from` to `to`; both must be in one folder. A link at `to` is
    /// replaced, not followed.
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (place, to_name) = self.siblings(from, to)?;
        place.rename(&place.name, to_name)
    }

    /// As [`Folder::rename`], never replacing what is at `to` (see
    /// [`Place::rename_new`]).
    pub fn rename_new(&self, from: &str, to: &str) -> io::Result<()> {
        let (place, to_name) = self.siblings(from, to)?;
        place.rename_new(&place.name, to_name)
    }

    /// The place of `from`, and the name of `to` in the same folder.
    fn siblings<'a>(&self, from: &str, to: &'a str) -> io::Result<(Place, &'a str)> {
        let place = self.place(from, false)?;
        let (to_dir_name, to_name) = to.rsplit_once('/').unwrap_or(("", to));
        let from_dir_name = from.rsplit_once('/').map_or("", |(d, _)| d);
        if from_dir_name != to_dir_name {
            return Err(invalid(to, "a rename must stay in its folder"));
        }
        Ok((place, to_name))
    }

    /// Removes the folder at `relative` if it is empty (else leaves it).
    pub fn remove_empty_folder(&self, relative: &str) -> io::Result<()> {
        let place = self.place(relative, false)?;
        match place.dir.remove_dir(&place.name) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Removes the file (or link) at `relative`, if there is one.
    pub fn remove(&self, relative: &str) -> io::Result<()> {
        let place = self.place(relative, false)?;
        place.remove(&place.name)
    }

    /// Reads the whole file at `relative`.
    pub fn read(&self, relative: &str) -> io::Result<Vec<u8>> {
        if let Some((file, len)) = self.file_at_once(relative) {
            return read_whole(&file, len);
        }
        let place = self.place(relative, false)?;
        place.read(&place.name)
    }

    /// Writes `bytes` at `relative` atomically: `relative.tmp`, then a rename.
    pub fn write_atomic(&self, relative: &str, bytes: &[u8]) -> io::Result<()> {
        self.write_atomic_with(relative, |file| file.write_all(bytes))
    }

    /// As [`Folder::write_atomic`], the bytes written by `write` as they
    /// come (through a buffer), never all in memory.
    pub fn write_atomic_with(
        &self,
        relative: &str,
        write: impl FnOnce(&mut io::BufWriter<std::fs::File>) -> io::Result<()>,
    ) -> io::Result<()> {
        let place = self.place(relative, true)?;
        let temporary = format!("{}.tmp", place.name);
        let written = place.create(&temporary).and_then(|file| {
            let mut buffered = io::BufWriter::new(file);
            write(&mut buffered)?;
            buffered
                .into_inner()
                .map_err(io::IntoInnerError::into_error)?;
            place.rename(&temporary, &place.name)
        });
        if written.is_err() {
            let _ = place.remove(&temporary);
        }
        written
    }

    /// Flushes the folder that holds `relative` to disk (its entries: names
    /// added by a rename).
    pub fn sync_parent(&self, relative: &str) -> io::Result<()> {
        self.place(relative, false)?.sync()
    }

    /// Calls `each` with the path of everything beneath the folder and what
    /// it is, folder by folder in the order of their names, entering folders
    /// but never a link.
    pub fn each_entry(
        &self,
        mut each: impl FnMut(&str, Entry) -> io::Result<()>,
    ) -> io::Result<()> {
        fn walk(
            dir: &Dir,
            prefix: &str,
            each: &mut dyn FnMut(&str, Entry) -> io::Result<()>,
        ) -> io::Result<()> {
            let mut entries = Vec::new();
            let listed = match dir.entries() {
                Ok(listed) => listed,
                Err(_) if !prefix.is_empty() => {
                    return each(prefix.trim_end_matches('/'), Entry::Unreadable);
                }
                Err(error) => return Err(error),
            };
            for entry in listed {
                let entry = entry?;
                let kind = entry.file_type()?;
                let kind = if kind.is_symlink() {
                    Entry::Link
                } else if kind.is_dir() {
                    Entry::Folder
                } else if kind.is_file() {
                    Entry::File
                } else {
                    Entry::Other
                };
                match entry.file_name().into_string() {
                    Ok(name) => entries.push((name, kind)),
                    Err(name) => {
                        entries.push((name.to_string_lossy().into_owned(), Entry::NotUnicode))
                    }
                }
            }
            entries.sort();
            for (name, kind) in entries {
                let path = format!("{prefix}{name}");
                each(&path, kind)?;
                if kind == Entry::Folder {
                    match dir.open_dir_nofollow(&name) {
                        Ok(folder) => walk(&folder, &format!("{path}/"), each)?,
                        Err(_) => each(&path, Entry::Unreadable)?,
                    }
                }
            }
            Ok(())
        }
        walk(&self.dir, "", &mut each)
    }
}

/// What stands at a name in a folder, as [`Folder::each_entry`] sees it
/// (links are not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Entry {
    /// A regular file.
    File,
    /// A folder.
    Folder,
    /// A symbolic link.
    Link,
    /// A pipe, a device or a socket.
    Other,
    /// A name that is not valid Unicode (shown with replacement characters).
    NotUnicode,
    /// A folder that cannot be opened or listed (its contents are not seen).
    Unreadable,
}

/// Where one file is in a mirror: the folder that holds it, opened once
/// beneath the mirror without following links, and the file's name in it.
///
/// Everything done to the file and to the files beside it (its partial,
/// its temporary) goes through that one handle: a copy resolves its path
/// once, not once for each look, open and rename. The names given to its
/// methods are names in that folder.
#[derive(Debug)]
pub struct Place {
    dir: Dir,
    /// The folder was made for this place, and nothing was written in it
    /// through the place since.
    made: AtomicBool,
    /// The folder's path in the mirror, with its trailing `/` (empty at the
    /// root).
    folder: String,
    name: String,
    root: PathBuf,
}

impl Place {
    /// The file's name in its folder.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the folder was made just now for this place and nothing
    /// was written in it through the place since: no file is in it (none
    /// from an earlier run or an earlier attempt, no partial download).
    pub fn is_new(&self) -> bool {
        self.made.load(Ordering::Relaxed)
    }

    /// The path in the mirror of `name` in this folder.
    pub fn relative(&self, name: &str) -> String {
        format!("{}{name}", self.folder)
    }

    /// The full path of `name` in this folder, for messages.
    pub fn display(&self, name: &str) -> PathBuf {
        self.root.join(self.relative(name))
    }

    /// Opens `name` as `mode` says, with its size when it was there before.
    fn open_with(
        &self,
        name: &str,
        options: &mut OpenOptions,
        mode: Mode,
    ) -> io::Result<(std::fs::File, u64)> {
        plain(name)?;
        if mode != Mode::Read {
            self.made.store(false, Ordering::Relaxed);
        }
        let at = self.relative(name);
        let failed = |error: io::Error| match error.kind() {
            io::ErrorKind::IsADirectory => not_regular(&at),
            _ => explain(&self.dir, name, &at, error),
        };
        // A link is not followed; a pipe does not block the open.
        options.follow(FollowSymlinks::No).nonblock(true);
        if mode == Mode::Create {
            // Made anew, never opened in place: whatever had the name (a
            // file with other names, a link, a pipe) loses only the name.
            // A file made with `O_EXCL` is a new regular file of one name.
            options.create_new(true);
            let made = match self.dir.open_with(name, options) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    self.dir.remove_file(name).map_err(failed)?;
                    self.dir.open_with(name, options)
                }
                other => other,
            };
            return made.map(|file| (file.into_std(), 0)).map_err(failed);
        }
        let file = self.dir.open_with(name, options).map_err(failed)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(not_regular(&at));
        }
        if mode == Mode::Write && meta.nlink() > 1 {
            return Err(shared(&at));
        }
        Ok((file.into_std(), meta.len()))
    }

    /// Makes the file `name` anew (empty) for writing.
    pub fn create(&self, name: &str) -> io::Result<std::fs::File> {
        Ok(self
            .open_with(name, OpenOptions::new().write(true), Mode::Create)?
            .0)
    }

    /// Opens the existing file `name` to add to its end.
    pub fn append(&self, name: &str) -> io::Result<std::fs::File> {
        Ok(self
            .open_with(name, OpenOptions::new().append(true), Mode::Write)?
            .0)
    }

    /// Opens the existing file `name` for writing in place.
    pub fn modify(&self, name: &str) -> io::Result<std::fs::File> {
        Ok(self
            .open_with(name, OpenOptions::new().write(true), Mode::Write)?
            .0)
    }

    /// Reads the whole file `name`, into as much memory as its size when
    /// it was opened (and more should it have grown since).
    pub fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        let (file, len) = self.open_with(name, OpenOptions::new().read(true), Mode::Read)?;
        read_whole(&file, len)
    }

    /// Opens the file `name` for reading.
    pub fn read_file(&self, name: &str) -> io::Result<std::fs::File> {
        Ok(self
            .open_with(name, OpenOptions::new().read(true), Mode::Read)?
            .0)
    }

    /// The size of the regular file `name` (one with other names too, as
    /// backups that share files by hard links have, can be read); a link,
    /// a folder or a pipe there is an error.
    pub fn file_len(&self, name: &str) -> io::Result<u64> {
        self.len(name, false)
    }

    /// The size of the file `name` when it can be written in place: one with
    /// other names (a hard link) cannot, and is an error.
    pub fn own_len(&self, name: &str) -> io::Result<u64> {
        self.len(name, true)
    }

    fn len(&self, name: &str, own: bool) -> io::Result<u64> {
        Ok(self.metadata(name, own)?.len())
    }

    fn metadata(&self, name: &str, own: bool) -> io::Result<cap_std::fs::Metadata> {
        plain(name)?;
        let at = self.relative(name);
        let meta = self.dir.symlink_metadata(name)?;
        if meta.file_type().is_symlink() {
            Err(link(&at))
        } else if !meta.is_file() {
            Err(not_regular(&at))
        } else if own && meta.nlink() > 1 {
            Err(shared(&at))
        } else {
            Ok(meta)
        }
    }

    /// The size and modification time (nanoseconds since 1970) of the
    /// regular file `name`: what shows later that it has not changed.
    pub fn stamp(&self, name: &str) -> io::Result<(u64, i64)> {
        let (len, modified, _) = self.stamp_changed(name)?;
        Ok((len, modified))
    }

    /// [`Place::stamp`], and the file's change time (nanoseconds), where the
    /// system keeps one (see [`changed_at`]).
    pub fn stamp_changed(&self, name: &str) -> io::Result<(u64, i64, Option<i64>)> {
        let meta = self.metadata(name, false)?;
        #[cfg(unix)]
        let changed = Some(seconds_nanos(
            cap_std::fs::MetadataExt::ctime(&meta),
            cap_std::fs::MetadataExt::ctime_nsec(&meta),
        ));
        #[cfg(not(unix))]
        let changed = None;
        Ok((meta.len(), nanos(meta.modified()?.into_std()), changed))
    }

    /// Whether a folder (not a link to one) is at `name`.
    pub fn is_folder(&self, name: &str) -> bool {
        plain(name).is_ok()
            && self
                .dir
                .symlink_metadata(name)
                .is_ok_and(|meta| meta.is_dir())
    }

    /// Whether anything (a file, a folder, a link) is at `name`.
    pub fn exists(&self, name: &str) -> bool {
        plain(name).is_ok() && self.dir.symlink_metadata(name).is_ok()
    }

    /// Whether a file (not a link, not a folder) is at `name`.
    pub fn has_file(&self, name: &str) -> bool {
        self.file_len(name).is_ok()
    }

    /// Renames `from` to `to` in this folder. A link at `to` is replaced,
    /// not followed.
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        plain(from)?;
        plain(to)?;
        self.made.store(false, Ordering::Relaxed);
        self.dir.rename(from, &self.dir, to).map_err(|error| {
            let at = self.relative(to);
            match error.kind() {
                // A folder (empty or not) at the name a file is renamed to.
                io::ErrorKind::IsADirectory
                | io::ErrorKind::DirectoryNotEmpty
                | io::ErrorKind::AlreadyExists => not_regular(&at),
                _ => explain(&self.dir, to, &at, error),
            }
        })
    }

    /// Renames `from` to `to` in this folder unless something is at `to`
    /// (an error of kind `AlreadyExists`, and nothing moved): what is there
    /// is never replaced, not even by another process choosing the same
    /// name at the same moment (Linux's `renameat2` with
    /// `RENAME_NOREPLACE`; where the system or the file system does not
    /// offer it, a look just before the rename).
    pub fn rename_new(&self, from: &str, to: &str) -> io::Result<()> {
        plain(from)?;
        plain(to)?;
        self.made.store(false, Ordering::Relaxed);
        #[cfg(target_os = "linux")]
        {
            use std::ffi::CString;
            use std::os::fd::AsRawFd;
            let (Ok(c_from), Ok(c_to)) = (CString::new(from), CString::new(to)) else {
                return Err(invalid(to, "it holds a NUL character"));
            };
            let fd = self.dir.as_raw_fd();
            // SAFETY: `fd` is this folder's open handle for the whole call,
            // and both names are NUL-terminated strings that outlive it.
            let done = unsafe {
                libc::renameat2(
                    fd,
                    c_from.as_ptr(),
                    fd,
                    c_to.as_ptr(),
                    libc::RENAME_NOREPLACE,
                )
            };
            if done == 0 {
                return Ok(());
            }
            let error = io::Error::last_os_error();
            match error.raw_os_error() {
                // Not offered here (an old kernel, some file systems, a
                // sandbox that refuses the call).
                Some(libc::EINVAL | libc::ENOSYS | libc::ENOTSUP | libc::EPERM) => {}
                Some(libc::EEXIST) => return Err(error),
                _ => return Err(explain(&self.dir, to, &self.relative(to), error)),
            }
        }
        if self.exists(to) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{:?} is taken", self.relative(to)),
            ));
        }
        self.rename(from, to)
    }

    /// Removes the file (or link) `name`, if there is one.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        plain(name)?;
        match self.dir.remove_file(name) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Flushes the folder to disk (its entries: names added by a rename).
    pub fn sync(&self) -> io::Result<()> {
        self.dir.try_clone()?.into_std_file().sync_all()
    }
}

/// Reads the whole of `file`, into as much memory as `len` (its size when
/// it was opened; more should it have grown since).
fn read_whole(file: &std::fs::File, len: u64) -> io::Result<Vec<u8>> {
    // One more byte, so that the end is found without growing it; the
    // file is read as it is, its size not asked again.
    let mut bytes = Vec::new();
    // A size beyond what memory holds is an error, not an abort.
    bytes
        .try_reserve_exact(usize::try_from(len).unwrap_or(usize::MAX).saturating_add(1))
        .map_err(io::Error::other)?;
    Read::read_to_end(&mut Read::take(file, u64::MAX), &mut bytes)?;
    Ok(bytes)
}

/// Paths beneath a folder opened in one call: Linux's `openat2` (5.6 and
/// later) with `RESOLVE_BENEATH` (nothing outside the folder is reached, not
/// by `..`, not by an absolute path) and `RESOLVE_NO_SYMLINKS` (no link is
/// followed, on the way or at the end): what opening one segment at a time
/// without following links ensures, in one system call rather than one per
/// segment (and a look that a kept folder is still at its name). Whatever
/// it refuses (a link, a file where a folder should be), the segment by
/// segment way is taken, to say it in words.
#[cfg(target_os = "linux")]
mod beneath {
    use std::io;
    use std::os::fd::OwnedFd;
    use std::sync::OnceLock;

    use cap_std::fs::Dir;
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    use rustix::io::Errno;

    const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
        .union(ResolveFlags::NO_SYMLINKS)
        .union(ResolveFlags::NO_MAGICLINKS);

    /// Whether the system opens paths this way: asked once, by opening the
    /// first folder itself (an older kernel has no `openat2`, a sandbox may
    /// refuse it). An error later is of that one path.
    static AVAILABLE: OnceLock<bool> = OnceLock::new();

    /// Opens `path` (plain segments) beneath `dir` with `flags` (and never
    /// following a link); `None` where the system cannot.
    pub(super) fn open(dir: &Dir, path: &str, flags: OFlags) -> Option<io::Result<OwnedFd>> {
        let flags = flags | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        let available = AVAILABLE.get_or_init(|| {
            rustix::fs::openat2(
                dir,
                ".",
                OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                RESOLVE,
            )
            .is_ok()
        });
        if !available {
            return None;
        }
        // A rename anywhere on the system while the path is resolved makes
        // the call fail with `EAGAIN`; a few more tries, then the other way.
        for _ in 0..4 {
            match rustix::fs::openat2(dir, path, flags, Mode::empty(), RESOLVE) {
                Ok(fd) => return Some(Ok(fd)),
                Err(Errno::AGAIN) => {}
                Err(error) => return Some(Err(error.into())),
            }
        }
        None
    }
}

/// The change time (nanoseconds since 1970) in a file's metadata `meta`,
/// where the system keeps one: it moves with every change to a file, to its
/// bytes, times and names alike, and no one can set it back.
pub fn changed_at(meta: &std::fs::Metadata) -> Option<i64> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(seconds_nanos(meta.ctime(), meta.ctime_nsec()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// A time given as seconds and nanoseconds, in nanoseconds.
#[cfg(unix)]
fn seconds_nanos(seconds: i64, nanos: i64) -> i64 {
    seconds.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// `at` in nanoseconds since 1970 (negative before).
pub fn nanos(at: std::time::SystemTime) -> i64 {
    match at.duration_since(std::time::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// `name` when it is one plain segment (see [`segments`]).
fn plain(name: &str) -> io::Result<()> {
    if is_plain(name) {
        Ok(())
    } else {
        Err(invalid(name, "it is not a plain name in one folder"))
    }
}

/// Whether `segment` is a plain name: not empty, not `.` or `..`, with no
/// separator. Cairn's own paths never hold other segments, so one that does
/// came from a damaged or hostile record.
fn is_plain(segment: &str) -> bool {
    !(segment.is_empty()
        || segment == "."
        || segment == ".."
        || segment.contains(['/', '\\', '\0'])
        || (cfg!(windows) && segment.contains(':')))
}

/// The segments of a relative path, refusing any that is not a plain name.
fn segments(relative: &str) -> io::Result<Vec<&str>> {
    let segments: Vec<&str> = relative.split('/').collect();
    if !segments.iter().all(|s| is_plain(s)) {
        return Err(invalid(
            relative,
            "it is not a plain path inside the mirror (empty, `.` or `..` segments, or separators)",
        ));
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
    /// Made anew, with its folders.
    Create,
    /// Written in place (it must exist).
    Write,
    /// Read (it must exist).
    Read,
}

/// Opens `folders[from..]` one beneath the other, starting in `start`
/// (the folder at `folders[..from]`), making them when `create`, never
/// following a link: the last one, with whether it was made here.
fn open_each(start: &Dir, folders: &[&str], from: usize, create: bool) -> io::Result<(Dir, bool)> {
    let mut current: Option<Dir> = None;
    let mut made = false;
    for (n, segment) in folders.iter().enumerate().skip(from) {
        let here = current.as_ref().unwrap_or(start);
        made = false;
        let next = match here.open_dir_nofollow(segment) {
            Err(error) if create && error.kind() == io::ErrorKind::NotFound => {
                match here.create_dir(segment) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                    Err(_) => here.open_dir_nofollow(segment),
                    Ok(()) => {
                        made = true;
                        here.open_dir_nofollow(segment)
                    }
                }
            }
            other => other,
        };
        let next = next.map_err(|error| explain(here, segment, &folders[..=n].join("/"), error))?;
        current = Some(next);
    }
    match current {
        Some(dir) => Ok((dir, made)),
        None => Ok((start.try_clone()?, false)),
    }
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
            io::Error::other(format!(
                "{at:?} in the mirror is a file where a folder should be; Cairn does not replace it. Move it away, then run the job again"
            ))
        }
        Ok(meta) if !meta.is_dir() && !meta.is_file() => not_regular(at),
        _ => error,
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// The folder at `root`, opened as Cairn does (`at_once`), or one
    /// segment at a time, as where the system cannot open a path in one call.
    fn open(root: &Path, at_once: bool) -> Folder {
        let folder = Folder::open(root).unwrap();
        if at_once {
            folder
        } else {
            folder.segment_by_segment()
        }
    }

    #[test]
    fn a_files_change_time_is_read_and_moves_when_it_is_written() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"a").unwrap();
        let folder = Folder::open(dir.path()).unwrap();
        let place = folder.place("f", false).unwrap();
        let (len, modified, before) = place.stamp_changed("f").unwrap();
        let meta = std::fs::metadata(dir.path().join("f")).unwrap();
        assert_eq!((len, modified), (1, nanos(meta.modified().unwrap())));
        assert_eq!(before, changed_at(&meta));
        std::thread::sleep(std::time::Duration::from_millis(20));
        // New bytes given the old modification time again: the change
        // time still moved.
        let file = std::fs::File::options()
            .write(true)
            .open(dir.path().join("f"))
            .unwrap();
        std::io::Write::write_all(&mut &file, b"b").unwrap();
        file.set_modified(meta.modified().unwrap()).unwrap();
        let (_, again, after) = place.stamp_changed("f").unwrap();
        assert_eq!(again, modified);
        assert!(after.unwrap() > before.unwrap());
    }

    #[test]
    fn files_are_written_beneath_the_folder() {
        for at_once in [true, false] {
            files_are_written_beneath(at_once);
        }
    }

    fn files_are_written_beneath(at_once: bool) {
        let dir = tempfile::tempdir().unwrap();
        let folder = open(&dir.path().join("mirror"), at_once);
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
    fn a_run_keeps_its_collection_folders_open_and_still_follows_no_link() {
        for at_once in [true, false] {
            a_run_keeps_its_collection_folders_open(at_once);
        }
    }

    fn a_run_keeps_its_collection_folders_open(at_once: bool) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mirror");
        let folder = open(&root, at_once).keeping_parents();
        // Opened in one call, a path passes by no kept folder but to make
        // an item's: the count of those kept is of the other way.
        let kept = |count: usize| {
            let kept = folder.parents.as_ref().unwrap().lock().unwrap().len();
            assert!(at_once || kept == count, "{kept} kept, not {count}");
        };
        // The collection's folder is made once; each item's is new once,
        // until something is written in it.
        let first = folder.place("c/one/a.tif", true).unwrap();
        assert!(first.is_new());
        first.create("a.tif.part").unwrap();
        assert!(!first.is_new(), "a retry must look for its partial");
        assert!(!folder.place("c/one/b.tif", true).unwrap().is_new());
        assert!(folder.place("c/two/a.tif", true).unwrap().is_new());
        folder.write_atomic("c/two/two.json", b"{}").unwrap();
        assert_eq!(std::fs::read(root.join("c/two/two.json")).unwrap(), b"{}");
        kept(1);
        // A link planted at an item's name beneath the kept folder.
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        symlink(&outside, root.join("c/three")).unwrap();
        let error = folder.create("c/three/a.tif").unwrap_err();
        assert!(error.to_string().contains("\"c/three\""), "{error}");
        // The collection's folder moved away (out of the mirror) and a link
        // put in its place: refused, never written through the old handle.
        let moved = dir.path().join("moved");
        std::fs::rename(root.join("c"), &moved).unwrap();
        symlink(&moved, root.join("c")).unwrap();
        let error = folder.create("c/four/a.tif").unwrap_err();
        assert!(error.to_string().contains("\"c\""), "{error}");
        assert!(!moved.join("four").exists());
        // Another folder at the name: the new one is written, not the old.
        std::fs::remove_file(root.join("c")).unwrap();
        std::fs::create_dir(root.join("c")).unwrap();
        folder.write_atomic("c/four/four.json", b"4").unwrap();
        assert!(root.join("c/four/four.json").is_file());
        assert!(!moved.join("four").exists());
        // With it kept, the folder moved away within the mirror and a new
        // one made at its name: the new one is written, not the kept one.
        kept(1);
        std::fs::rename(root.join("c"), root.join("moved")).unwrap();
        std::fs::create_dir(root.join("c")).unwrap();
        folder.write_atomic("c/x/y.json", b"y").unwrap();
        assert!(root.join("c/x/y.json").is_file());
        assert!(!root.join("moved/x").exists());
        // Removed: made again.
        std::fs::remove_dir_all(root.join("c")).unwrap();
        folder.write_atomic("c/five/five.json", b"5").unwrap();
        assert!(root.join("c/five/five.json").is_file());
        kept(1);
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        // Deeper paths keep only the folder at the root.
        folder.write_atomic("d/i/sub/x.tif", b"x").unwrap();
        // A new folder deep down, made in the one above it.
        let deep = folder.place("d/i/other/y.tif", true).unwrap();
        assert!(deep.is_new());
        deep.create("y.tif").unwrap();
        assert!(root.join("d/i/other/y.tif").is_file());
        kept(2);
        // Without keeping, nothing is kept.
        let plain = Folder::open(&root).unwrap();
        assert!(plain.place("c/six/a.tif", true).unwrap().is_new());
        assert!(plain.parents.is_none());
    }

    #[test]
    fn a_file_kept_aside_never_replaces_what_has_its_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mirror");
        let folder = Folder::open(&root).unwrap();
        folder
            .write_atomic("c/collection.json", b"damaged")
            .unwrap();
        folder.write_atomic("c/kept", b"kept before").unwrap();
        std::fs::write(dir.path().join("precious"), b"mine").unwrap();
        symlink(dir.path().join("precious"), root.join("c/link")).unwrap();
        // Taken by a file, or by a link (neither replaced nor followed).
        for taken in ["c/kept", "c/link"] {
            let error = folder.rename_new("c/collection.json", taken).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::AlreadyExists, "{error}");
        }
        assert_eq!(folder.read("c/kept").unwrap(), b"kept before");
        assert_eq!(std::fs::read(dir.path().join("precious")).unwrap(), b"mine");
        assert_eq!(folder.read("c/collection.json").unwrap(), b"damaged");
        folder.rename_new("c/collection.json", "c/kept-2").unwrap();
        assert_eq!(folder.read("c/kept-2").unwrap(), b"damaged");
        assert!(!folder.has_file("c/collection.json"));
        // Never into another folder.
        assert!(folder.rename_new("c/kept-2", "d/kept").is_err());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_path_is_opened_in_one_call_beneath_the_folder_and_through_no_link() {
        use rustix::fs::OFlags;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mirror");
        let folder = Folder::open(&root).unwrap();
        std::fs::create_dir_all(root.join("c/i")).unwrap();
        std::fs::write(root.join("c/i/i.json"), b"{}").unwrap();
        symlink(root.join("c"), root.join("l")).unwrap();
        let open = |path: &str, flags| beneath::open(&folder.dir, path, flags);
        // Linux before 5.6, or a sandbox that refuses openat2: the other way
        // (tested with every test here).
        let Some(opened) = open("c/i", OFlags::DIRECTORY) else {
            eprintln!("skipped: this system does not open paths with openat2");
            return;
        };
        assert!(opened.is_ok());
        assert!(open("c/i/i.json", OFlags::RDONLY).unwrap().is_ok());
        let code = |path: &str| {
            open(path, OFlags::RDONLY)
                .unwrap()
                .unwrap_err()
                .raw_os_error()
        };
        assert_eq!(code("l/i/i.json"), Some(libc::ELOOP));
        assert_eq!(code("c/i/none.json"), Some(libc::ENOENT));
        assert_eq!(code("c/../../x"), Some(libc::EXDEV));
        assert_eq!(code("/etc/passwd"), Some(libc::EXDEV));
        // Never with `..` nor a link, whatever the path says.
        assert!(folder.file_at_once("c/../c/i/i.json").is_none());
        assert!(folder.file_at_once("l/i/i.json").is_none());
        assert_eq!(folder.file_at_once("c/i/i.json").unwrap().1, 2);
    }

    #[test]
    fn links_inside_the_folder_are_never_followed() {
        for at_once in [true, false] {
            links_are_never_followed(at_once);
        }
    }

    fn links_are_never_followed(at_once: bool) {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("precious"), b"mine").unwrap();
        let root = dir.path().join("mirror");
        let folder = open(&root, at_once);
        // A folder link and a file link, both leading out.
        symlink(&outside, root.join("c")).unwrap();
        std::fs::create_dir(root.join("d")).unwrap();
        symlink(outside.join("precious"), root.join("d/a.tif.part")).unwrap();
        let error = folder.create("c/i/a.tif").unwrap_err();
        assert!(error.to_string().contains("never follows links"), "{error}");
        // A link on the way, inside the mirror or out of it, is not taken.
        std::fs::create_dir_all(root.join("e/i")).unwrap();
        std::fs::write(root.join("e/i/i.json"), b"{}").unwrap();
        symlink(root.join("e"), root.join("f")).unwrap();
        for error in [
            folder.read("c/precious").unwrap_err(),
            folder.read_file("c/precious").unwrap_err(),
            folder.read("f/i/i.json").unwrap_err(),
            folder.create("f/i/j.json").unwrap_err(),
            folder.write_atomic("f/i/i.json", b"[]").unwrap_err(),
        ] {
            assert!(error.to_string().contains("never follows links"), "{error}");
        }
        assert_eq!(folder.read("e/i/i.json").unwrap(), b"{}");
        for error in [
            folder.read("d/a.tif.part").unwrap_err(),
            folder.read_file("d/a.tif.part").unwrap_err(),
            folder.read("d/a.tif.part").unwrap_err(),
            folder.append("d/a.tif.part").unwrap_err(),
            folder.file_len("d/a.tif.part").unwrap_err(),
        ] {
            assert!(error.to_string().contains("never follows links"), "{error}");
        }
        assert!(!folder.has_file("d/a.tif.part"));
        // Made anew, a file takes the link's name; what it led to is untouched.
        std::io::Write::write_all(&mut folder.create("d/a.tif.part").unwrap(), b"ours").unwrap();
        assert_eq!(std::fs::read(outside.join("precious")).unwrap(), b"mine");
        assert_eq!(folder.read("d/a.tif.part").unwrap(), b"ours");
        // A rename replaces a link at the target; it does not write through it.
        symlink(outside.join("precious"), root.join("d/b.tif")).unwrap();
        folder.write_atomic("d/b.tif", b"new").unwrap();
        assert_eq!(std::fs::read(outside.join("precious")).unwrap(), b"mine");
        assert_eq!(folder.read("d/b.tif").unwrap(), b"new");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
        // A folder opened beneath the mirror is reached the same way: a
        // link to one is refused, and nothing climbs out of one.
        let error = folder.sub("c").unwrap_err();
        assert!(error.to_string().contains("never follows links"), "{error}");
        let d = folder.sub("d").unwrap();
        assert_eq!(d.read("b.tif").unwrap(), b"new");
        assert!(d.read("a.tif.part").is_ok());
        assert_eq!(d.display("b.tif"), root.join("d/b.tif"));
        for bad in ["../d/b.tif", "../../outside/precious", "/etc/passwd"] {
            assert_eq!(d.read(bad).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
        assert_eq!(folder.sub("").unwrap().read("d/b.tif").unwrap(), b"new");
    }

    #[test]
    fn hard_links_and_pipes_inside_the_folder_are_never_written_through() {
        for at_once in [true, false] {
            hard_links_and_pipes_are_never_written_through(at_once);
        }
    }

    fn hard_links_and_pipes_are_never_written_through(at_once: bool) {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("precious");
        std::fs::write(&outside, b"mine").unwrap();
        let root = dir.path().join("mirror");
        let folder = open(&root, at_once);
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
            folder.read_file("b.tif.part").unwrap_err(),
            folder.read("b.tif.part").unwrap_err(),
            folder.append("b.tif.part").unwrap_err(),
            folder.modify("b.tif.part").unwrap_err(),
            folder.file_len("b.tif.part").unwrap_err(),
        ] {
            assert!(error.to_string().contains("not a regular file"), "{error}");
        }
        // Made anew, a file takes the pipe's name: the pipe is not opened.
        folder.create("b.tif.part").unwrap();
        assert_eq!(folder.own_len("b.tif.part").unwrap(), 0);
        // A folder is never opened as a file.
        std::fs::create_dir(root.join("d.tif")).unwrap();
        for error in [
            folder.read_file("d.tif").unwrap_err(),
            folder.read("d.tif").unwrap_err(),
            folder.modify("d.tif").unwrap_err(),
            folder.create("d.tif").unwrap_err(),
        ] {
            assert!(error.to_string().contains("not a regular file"), "{error}");
        }
        // Nor is a file renamed onto a folder: that is said in words too,
        // and the folder and what it holds are left alone.
        std::fs::write(root.join("d.tif/inside"), b"theirs").unwrap();
        std::fs::create_dir(root.join("e.tif")).unwrap();
        for name in ["d.tif", "e.tif"] {
            let error = folder.write_atomic(name, b"new").unwrap_err();
            assert!(error.to_string().contains("not a regular file"), "{error}");
            assert!(error.to_string().contains(name), "{error}");
        }
        assert_eq!(std::fs::read(root.join("d.tif/inside")).unwrap(), b"theirs");
    }
}
