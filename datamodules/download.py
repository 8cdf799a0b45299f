"""Shared download and extraction helpers: checksum-verified, atomic, path-safe.

Every datamodule that fetches files goes through :func:`download_file`: the bytes land in a
temporary file beside the destination, their sha256 is checked against the expected value, and
only a verified file is moved into place (``os.replace``, atomic on one filesystem). A mismatch
deletes the temporary file and raises :class:`ChecksumError`; nothing half-written or unverified
is ever left under the destination name. There is no way to download without a checksum.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from contextlib import contextmanager
import urllib.request
import zipfile
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


class ChecksumError(RuntimeError):
    """A downloaded file's sha256 differs from the published one."""


class UnsafeArchiveError(RuntimeError):
    """An archive member would be written outside the extraction folder (or is a link/device)."""


class DownloadError(OSError):
    """A file could not be fetched (no network, a proxy, a moved URL); nothing was kept."""


class DataNotFoundError(FileNotFoundError):
    """Benchmark files are missing and downloading was not allowed (or is not possible)."""


class CorruptDataError(ValueError):
    """A benchmark file is there but its content is not what its format promises (truncated,
    corrupted, or another file under the expected name). The message names the file and what
    was expected; the remedy is to replace the file with a verified copy."""


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, out: BinaryIO) -> None:
    """Copy the bytes at ``url`` (http(s):// or file://) into ``out``. Tests monkeypatch this."""
    with urllib.request.urlopen(url, timeout=60) as response:
        shutil.copyfileobj(response, out, CHUNK)


def _check_sha256(sha256: str, what: str) -> str:
    if not isinstance(sha256, str) or len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower()):
        raise ValueError(f"sha256 for {what} must be 64 hexadecimal digits, got {sha256!r}")
    return sha256.lower()


def download_file(url: str, destination: str | os.PathLike, sha256: str) -> Path:
    """Download ``url`` to ``destination`` if the sha256 of the bytes equals ``sha256``.

    Raises :class:`ChecksumError` (naming the file, the expected and the actual digest) on a
    mismatch, leaving neither the temporary nor the destination file behind. An existing
    destination is replaced only by a verified download.
    """
    destination = Path(destination)
    expected = _check_sha256(sha256, destination.name)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                _fetch(url, out)
            except OSError as error:  # urllib's URLError, timeouts, refused connections
                reason = getattr(error, "reason", None) or error.strerror or error
                raise DownloadError(
                    f"could not download {destination.name} from {url} ({reason}); offline, copy the file "
                    f"(sha256 {expected}) into {destination.parent} (--data.data_dir) and run with "
                    f"--data.download false"
                ) from error
        actual = sha256_of(temp)
        if actual != expected:
            raise ChecksumError(
                f"{destination.name} downloaded from {url} has sha256 {actual}, expected {expected}; "
                f"the download was discarded (a changed mirror or a corrupted transfer)"
            )
        os.replace(temp, destination)
    finally:
        temp.unlink(missing_ok=True)
    return destination


def _inside(root: Path, name: str) -> bool:
    target = (root / name).resolve()
    return target == root or root in target.parents


def extract_archive(archive: str | os.PathLike, target_dir: str | os.PathLike) -> Path:
    """Extract a tar (any compression) or zip archive into ``target_dir``.

    Every member is checked before anything is written: absolute paths, ``..`` components that
    leave ``target_dir``, links pointing outside it, and device/FIFO members raise
    :class:`UnsafeArchiveError` naming the member. Tar extraction additionally uses Python's
    ``"data"`` filter as a second line of defence.
    """
    archive, root = Path(archive), Path(target_dir)
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if Path(name).is_absolute() or not _inside(root, name):
                    raise UnsafeArchiveError(f"{archive.name}: member {name!r} would be extracted outside {root}")
            zf.extractall(root)
        return root
    if not tarfile.is_tarfile(archive):
        raise ValueError(f"{archive} is neither a tar nor a zip archive")
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        for m in members:
            if Path(m.name).is_absolute() or not _inside(root, m.name):
                raise UnsafeArchiveError(f"{archive.name}: member {m.name!r} would be extracted outside {root}")
            if m.issym() or m.islnk():
                # A symlink resolves from its own folder, a hard link from the archive root.
                base = (root / m.name).parent if m.issym() else root
                if Path(m.linkname).is_absolute() or not _inside(root, str(base / m.linkname)):
                    raise UnsafeArchiveError(
                        f"{archive.name}: link member {m.name!r} points outside {root} ({m.linkname!r})"
                    )
            if m.isdev() or m.isfifo():
                raise UnsafeArchiveError(f"{archive.name}: member {m.name!r} is a device or FIFO")
        tf.extractall(root, members=members, filter="data")
    return root


def missing_files(directory: Path, names) -> list[str]:
    return [name for name in names if not (directory / name).is_file()]


def ensure_files(directory: str | os.PathLike, sources: dict[str, tuple[str, str]], download: bool,
                 dataset: str) -> Path:
    """Make sure every file named in ``sources`` ({name: (url, sha256)}) is in ``directory``.

    Files already there are used as they are (offline copies); missing ones are downloaded and
    verified when ``download`` is true, otherwise :class:`DataNotFoundError` lists what is
    expected and how to get it.
    """
    directory = Path(directory)
    missing = missing_files(directory, sources)
    if not missing:
        return directory
    if not download:
        listing = "\n".join(f"  {name}  (sha256 {sha}, from {url})" for name, (url, sha) in sources.items())
        raise DataNotFoundError(
            f"{dataset}: {directory} is missing {', '.join(missing)}. Expected in that folder, exactly as "
            f"published:\n{listing}\nPass download=True (--data.download true) to fetch and verify them, "
            f"or copy them there and point data_dir (--data.data_dir) at the folder."
        )
    for name in missing:
        url, sha256 = sources[name]
        download_file(url, directory / name, sha256)
    return directory


DOWNLOAD_HINT = "(--data.download true verifies its sha256)"


@contextmanager
def corrupt_file_advice(download: bool):
    """Re-word a :class:`CorruptDataError` raised inside when ``download`` is already on: advising
    ``--data.download true`` would not help (the file is there, so it is not fetched again)."""
    try:
        yield
    except CorruptDataError as error:
        if not download or DOWNLOAD_HINT not in str(error):
            raise
        raise CorruptDataError(str(error).replace(
            DOWNLOAD_HINT, "(delete it: --data.download is already true, so the next run downloads it again "
                           "and verifies its sha256)")) from error
