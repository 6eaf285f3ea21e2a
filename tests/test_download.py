"""The data-set registry: verified shared copy, corrupted files, offline errors, atomic downloads (no network)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from course_utils import download
from course_utils.download import DataNotAvailableError, RemoteFile, fetch_dataset, register_dataset

NAME = "isbi2012-membrane"


def _copy_dataset(src_root: Path, dst_root: Path) -> Path:
    shutil.copytree(src_root / NAME, dst_root / NAME, ignore=shutil.ignore_patterns("*.md"))
    return dst_root / NAME


def _no_network(*args, **kwargs):
    raise OSError("network is unreachable (simulated)")


def test_registry_knows_the_membranes_with_60_sha256_hashes():
    spec = download.get_dataset(NAME)
    assert len(spec.files) == 60
    assert {f.path for f in spec.files} == {f"images/{i}.png" for i in range(30)} | {f"masks/{i}.png" for i in range(30)}
    assert all(f.known_hash.startswith("sha256:") and len(f.known_hash) == 7 + 64 for f in spec.files)
    assert all(f.url.startswith("https://raw.githubusercontent.com/zhixuhao/unet/master/data/membrane/train/")
               for f in spec.files)
    with pytest.raises(KeyError, match="register_dataset"):
        download.get_dataset("no-such-data")


def test_happy_path_on_the_shared_copy_verifies_and_writes_nothing(membrane_dir, monkeypatch):
    monkeypatch.setattr(download, "_retrieve", _no_network)  # must not be needed
    before = {p: p.stat().st_mtime_ns for p in (membrane_dir / NAME).rglob("*")}
    folder = fetch_dataset(NAME, root=membrane_dir, download=False)
    assert folder == membrane_dir / NAME
    assert {p: p.stat().st_mtime_ns for p in (membrane_dir / NAME).rglob("*")} == before


def test_default_root_is_the_environment_data_dir(membrane_dir, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(membrane_dir))
    assert fetch_dataset(NAME, download=False) == membrane_dir / NAME


def test_root_pointing_at_the_data_set_itself_says_to_use_its_parent(membrane_dir):
    with pytest.raises(ValueError, match="root=" + str(membrane_dir)):
        fetch_dataset(NAME, root=membrane_dir / NAME, download=False)


def test_corrupted_copy_names_the_file_and_says_to_delete_it(membrane_dir, tmp_path):
    folder = _copy_dataset(membrane_dir, tmp_path)
    target = folder / "masks" / "7.png"
    data = bytearray(target.read_bytes())
    data[100] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"masks/7\.png.*delete"):
        fetch_dataset(NAME, root=tmp_path, download=False)


def test_missing_files_without_download_say_where_and_how(tmp_path):
    with pytest.raises(DataNotAvailableError) as info:
        fetch_dataset(NAME, root=tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / NAME) in message and "COURSE_DATA_DIR" in message and "online" in message


def test_offline_gives_one_clear_error(membrane_dir, tmp_path, monkeypatch):
    folder = _copy_dataset(membrane_dir, tmp_path)
    (folder / "images" / "3.png").unlink()
    monkeypatch.setattr(download, "_retrieve", _no_network)
    with pytest.raises(DataNotAvailableError) as info:
        fetch_dataset(NAME, root=tmp_path)
    message = str(info.value)
    assert "images/3.png" in message and "network is unreachable" in message and "COURSE_DATA_DIR" in message
    assert isinstance(info.value, RuntimeError)


def test_missing_file_is_downloaded_and_others_are_kept(membrane_dir, tmp_path, monkeypatch):
    folder = _copy_dataset(membrane_dir, tmp_path)
    (folder / "masks" / "12.png").unlink()
    calls = []

    def fake_download(url, output_file, pooch_obj):
        calls.append(url)
        Path(output_file).write_bytes((membrane_dir / NAME / "masks" / "12.png").read_bytes())

    assert fetch_dataset(NAME, root=tmp_path, downloader=fake_download) == folder
    assert calls == ["https://raw.githubusercontent.com/zhixuhao/unet/master/data/membrane/train/label/12.png"]
    assert (folder / "masks" / "12.png").read_bytes() == (membrane_dir / NAME / "masks" / "12.png").read_bytes()


def test_half_written_download_never_lands_at_the_final_path(membrane_dir, tmp_path):
    folder = _copy_dataset(membrane_dir, tmp_path)
    (folder / "images" / "0.png").unlink()

    def truncated_download(url, output_file, pooch_obj):
        good = (membrane_dir / NAME / "images" / "0.png").read_bytes()
        Path(output_file).write_bytes(good[: len(good) // 2])  # connection dropped half-way

    with pytest.raises(DataNotAvailableError, match="checksum"):
        fetch_dataset(NAME, root=tmp_path, downloader=truncated_download)
    assert not (folder / "images" / "0.png").exists()
    assert sorted(p.name for p in (folder / "images").iterdir()) == sorted(f"{i}.png" for i in range(1, 30))


def test_archive_entries_are_unpacked(tmp_path):
    import hashlib
    import io
    import tarfile

    import pooch

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        payload = b"hello"
        info = tarfile.TarInfo("pets/annotations/a.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    archive = buffer.getvalue()
    register_dataset(
        "test-archive",
        files=[RemoteFile("https://example.invalid/pets.tar.gz", "pets.tar.gz", "md5:" + hashlib.md5(archive).hexdigest())],
        processor=lambda: pooch.Untar(extract_dir="."),
        required_paths=["pets/annotations/a.txt"],
        overwrite=True,
    )

    def fake_download(url, output_file, pooch_obj):
        Path(output_file).write_bytes(archive)

    folder = fetch_dataset("test-archive", root=tmp_path, downloader=fake_download)
    assert (folder / "pets" / "annotations" / "a.txt").read_bytes() == b"hello"
    # second call: present, verified, no download
    assert fetch_dataset("test-archive", root=tmp_path, download=False) == folder
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("test-archive", files=[RemoteFile("https://x.invalid/a", "a", "0" * 64)])


class _HTTPError(Exception):
    """Stands in for requests.HTTPError: carries a response with a status code and headers."""

    def __init__(self, status, headers=None):
        super().__init__(f"{status} Client Error")
        self.response = type("Response", (), {"status_code": status, "headers": headers or {}})()


def test_too_many_requests_is_retried_with_back_off(membrane_dir, tmp_path, monkeypatch):
    folder = _copy_dataset(membrane_dir, tmp_path)
    (folder / "images" / "7.png").unlink()
    waits, calls = [], []
    monkeypatch.setattr(download, "_sleep", waits.append)

    def rate_limited(url, output_file, pooch_obj):
        calls.append(url)
        if len(calls) == 1:
            raise _HTTPError(429)
        if len(calls) == 2:
            raise _HTTPError(503, {"Retry-After": "7"})
        Path(output_file).write_bytes((membrane_dir / NAME / "images" / "7.png").read_bytes())

    assert fetch_dataset(NAME, root=tmp_path, downloader=rate_limited) == folder
    assert len(calls) == 3 and waits == [download.RETRY_BASE_SECONDS, 7.0]
    assert (folder / "images" / "7.png").read_bytes() == (membrane_dir / NAME / "images" / "7.png").read_bytes()


def test_permanent_errors_are_not_retried_and_retries_end(membrane_dir, tmp_path, monkeypatch):
    folder = _copy_dataset(membrane_dir, tmp_path)
    (folder / "images" / "7.png").unlink()
    waits, calls = [], []
    monkeypatch.setattr(download, "_sleep", waits.append)

    def not_found(url, output_file, pooch_obj):
        calls.append(url)
        raise _HTTPError(404)

    with pytest.raises(DataNotAvailableError, match="404"):
        fetch_dataset(NAME, root=tmp_path, downloader=not_found)
    assert len(calls) == 1 and waits == []

    calls.clear()

    def always_busy(url, output_file, pooch_obj):
        calls.append(url)
        raise _HTTPError(429)

    with pytest.raises(DataNotAvailableError, match="429"):
        fetch_dataset(NAME, root=tmp_path, downloader=always_busy)
    assert len(calls) == download.RETRIES + 1
    assert waits == [download.RETRY_BASE_SECONDS * 2**i for i in range(download.RETRIES)]


def test_partial_download_counts_what_is_really_missing(membrane_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "_sleep", lambda seconds: None)
    source = {f.url: membrane_dir / NAME / f.path for f in download.get_dataset(NAME).files}
    calls = []

    def five_then_offline(url, output_file, pooch_obj):
        calls.append(url)
        if len(calls) > 5:
            raise OSError("network is unreachable (simulated)")
        Path(output_file).write_bytes(source[url].read_bytes())

    with pytest.raises(DataNotAvailableError) as info:
        fetch_dataset(NAME, root=tmp_path, downloader=five_then_offline)
    assert "55 of 60 files missing" in str(info.value)
    assert len(list((tmp_path / NAME).rglob("*.png"))) == 5
