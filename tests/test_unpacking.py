"""Hostile archives: unpacking the Pet archives never touches anything outside the data set's folder.

Every test builds its archives in ``tmp_path`` and puts canary files next to the data set's folder (a
file and another data set's folder) and above it; each canary must survive. The ``guard_fs`` fixture
refuses, and fails the test for, any delete/move outside the data set's folder (or ``tmp_path``).
"""

from __future__ import annotations

import io
import tarfile

import pytest
from fs_guard import guard_fs  # noqa: F401  (the fixture)

from course_utils import download, pets
from course_utils.download import ArchiveError

NAME = "pets-under-test"


@pytest.fixture
def world(tmp_path, guard_fs):
    """tmp_path/canary.txt (above), data/canary.txt and data/isbi2012-membrane/ (next to the data folder)."""
    root = tmp_path / "data"
    canaries = {
        tmp_path / "canary.txt": b"above",
        root / "canary.txt": b"next to",
        root / "isbi2012-membrane" / "images" / "0.png": b"another data set",
    }
    for path, payload in canaries.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
    (root / NAME).mkdir()
    guard_fs.allow(root / NAME, tmp_path / "server")
    yield root
    for path, payload in canaries.items():
        assert path.read_bytes() == payload, f"canary {path} was changed"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "server") == ["canary.txt", "data"]
    assert sorted(p.name for p in root.iterdir()) == ["canary.txt", "isbi2012-membrane", NAME]


def _info(name, kind=tarfile.REGTYPE, linkname="", payload=b""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = len(payload) if kind == tarfile.REGTYPE else 0
    info.mode = 0o644
    return info, (io.BytesIO(payload) if kind == tarfile.REGTYPE else None)


def _write_tar(path, members):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            tar.addfile(*_info(*member))
    return path


def _good_annotations(server):
    return _write_tar(server / "annotations.tar.gz", [
        ("annotations/trimaps/a.png", tarfile.REGTYPE, "", b"png"),
        ("annotations/trainval.txt", tarfile.REGTYPE, "", b"a 1 1 1\n"),
        ("annotations/test.txt", tarfile.REGTYPE, "", b"a 1 1 1\n"),
    ])


def _register(server):
    urls = {a: (server / a).resolve().as_uri() for a in ("images.tar.gz", "annotations.tar.gz")}
    hashes = {a: "md5:" + download.file_hash(server / a, "md5") for a in urls}  # the archive's own checksum
    pets.register_pets(name=NAME, urls=urls, hashes=hashes)


def _fetch(root):
    return download.fetch_dataset(NAME, root=root, downloader=pets.MirrorDownloader(mirrors={}))


HOSTILE = {
    "absolute member": ([("/x/y.jpg", tarfile.REGTYPE, "", b"x")], "absolute path"),
    "parent member": ([("images/../../canary.txt", tarfile.REGTYPE, "", b"overwritten")], "'\\.\\.'"),
    "leading parent": ([("../canary.txt", tarfile.REGTYPE, "", b"overwritten")], "'\\.\\.'"),
    "symlink to outside": ([("images/link", tarfile.SYMTYPE, "../../canary.txt")], "link to"),
    "absolute symlink": ([("images/link", tarfile.SYMTYPE, "/etc")], "link to"),
    "write through symlink": ([("images/sub", tarfile.SYMTYPE, "."),
                               ("images/sub/a.jpg", tarfile.REGTYPE, "", b"x")], "below a symbolic link"),
    "hard link to outside": ([("images/a.jpg", tarfile.LNKTYPE, "../canary.txt")], "link to"),
    "absolute hard link": ([("images/a.jpg", tarfile.LNKTYPE, "/etc/passwd")], "link to"),
    "device file": ([("images/dev", tarfile.CHRTYPE)], "device file"),
    "fifo": ([("images/fifo", tarfile.FIFOTYPE)], "FIFO"),
    "duplicate member": ([("images/a.jpg", tarfile.REGTYPE, "", b"1"),
                          ("images/a.jpg", tarfile.REGTYPE, "", b"2")], "appears twice"),
    "other archive's folder": ([("images/a.jpg", tarfile.REGTYPE, "", b"x"),
                                ("annotations/trainval.txt", tarfile.REGTYPE, "", b"evil 1 1 1\n")],
                               "not under images/"),
    "another data set's folder": ([("isbi2012-membrane/images/0.png", tarfile.REGTYPE, "", b"x")],
                                  "not under images/"),
    "the archive itself": ([("images.tar.gz", tarfile.REGTYPE, "", b"x")], "archive itself"),
    "backslash": ([("images\\..\\..\\canary.txt", tarfile.REGTYPE, "", b"x")], "backslash"),
    "wrong layout, right checksum": ([("oxford-iiit-pet/images/a.jpg", tarfile.REGTYPE, "", b"x")],
                                     "layout is not the expected one"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_is_refused_before_anything_is_written(case, tmp_path, world, unregister):
    members, message = HOSTILE[case]
    server = tmp_path / "server"
    _write_tar(server / "images.tar.gz", members)
    _good_annotations(server)
    _register(server)
    with pytest.raises(ArchiveError, match="unsafe or damaged") as info:
        _fetch(world)
    text = str(info.value)
    assert "images.tar.gz" in text and "download" in text and "Could not download" not in text
    import re

    assert re.search(message, text), text
    folder = world / NAME
    # Nothing was unpacked: no images/, no staging folder left behind, nothing outside.
    assert not (folder / "images").exists()
    assert not any(p.name.startswith(".images.tar.gz.unpacking-") for p in folder.iterdir())


def test_member_names_are_named_in_the_error(tmp_path):
    archive = tmp_path / "images.tar.gz"
    _write_tar(archive, [("images/ok.jpg", tarfile.REGTYPE, "", b"x"), ("../../etc/passwd", tarfile.REGTYPE, "", b"x")])
    with tarfile.open(archive) as tar, pytest.raises(ArchiveError, match=r"member '\.\./\.\./etc/passwd'"):
        pets.check_members(tar.getmembers(), archive, ("images",))


def test_links_inside_the_archive_are_allowed(tmp_path):
    archive = tmp_path / "images.tar.gz"
    _write_tar(archive, [("images/a.jpg", tarfile.REGTYPE, "", b"x"),
                         ("images/b.jpg", tarfile.SYMTYPE, "a.jpg"),
                         ("images/c.jpg", tarfile.LNKTYPE, "images/a.jpg")])
    with tarfile.open(archive) as tar:
        assert pets.check_members(tar.getmembers(), archive, ("images",)) == ["images"]


def test_truncated_archive_says_delete_and_download_again_and_changes_nothing(tmp_path, world, unregister):
    folder = world / NAME
    # An older, good copy is in place: a damaged new archive must leave it exactly as it was.
    (folder / "images").mkdir()
    (folder / "images" / "old.jpg").write_bytes(b"old")
    server = tmp_path / "server"
    good = _write_tar(server / "good.tar.gz",
                      [(f"images/{i}.jpg", tarfile.REGTYPE, "", bytes(range(256)) * 64) for i in range(20)])
    archive = folder / "images.tar.gz"
    archive.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ArchiveError, match=r"damaged .*Delete .*images\.tar\.gz and download again"):
        pets.ExtractArchive()(str(archive), "download")
    assert sorted(p.name for p in (folder / "images").iterdir()) == ["old.jpg"]
    assert (folder / "images" / "old.jpg").read_bytes() == b"old"
    assert sorted(p.name for p in folder.iterdir()) == ["images", "images.tar.gz"]


def test_truncated_download_with_matching_checksum_is_a_clear_error(tmp_path, world, unregister):
    server = tmp_path / "server"
    good = _write_tar(server / "good.tar.gz",
                      [(f"images/{i}.jpg", tarfile.REGTYPE, "", bytes(range(256)) * 64) for i in range(20)])
    (server / "images.tar.gz").write_bytes(good.read_bytes()[:300])
    _good_annotations(server)
    _register(server)
    with pytest.raises(ArchiveError, match="download again"):
        _fetch(world)
    assert not (world / NAME / "images").exists()


def test_new_archive_replaces_the_old_copy_only_inside_the_folder(tmp_path, world, unregister, guard_fs):
    folder = world / NAME
    (folder / "images").mkdir()
    (folder / "images" / "old.jpg").write_bytes(b"old")
    archive = _write_tar(folder / "images.tar.gz", [("images/new.jpg", tarfile.REGTYPE, "", b"new")])
    assert pets.ExtractArchive()(str(archive), "update") == [str(folder / "images")]
    assert sorted(p.name for p in (folder / "images").iterdir()) == ["new.jpg"]
    assert sorted(p.name for p in folder.iterdir()) == ["images", "images.tar.gz"]
    # Every destructive call stayed inside the data set's folder.
    assert guard_fs.calls and all(path.startswith(str(folder.resolve())) for _, path in guard_fs.calls)


def test_a_link_in_place_of_the_folder_is_replaced_not_followed(tmp_path, world, unregister):
    folder = world / NAME
    (folder / "images").symlink_to(world / "isbi2012-membrane" / "images")  # would delete the other data set
    archive = _write_tar(folder / "images.tar.gz", [("images/new.jpg", tarfile.REGTYPE, "", b"new")])
    pets.ExtractArchive()(str(archive), "download")
    assert not (folder / "images").is_symlink() and (folder / "images" / "new.jpg").is_file()


def test_sample_archives_still_unpack_and_load(tmp_path, world, unregister):
    pets.register_sample_pets(tmp_path / "server", name=NAME, num_trainval=2, num_test=1)
    images, masks = pets.load_pets(root=world, size=8, dataset=NAME)
    assert images.shape == (2, 8, 8, 3) and masks.shape == (2, 8, 8)
    assert sorted(p.name for p in (world / NAME).iterdir()) == [
        "annotations", "annotations.tar.gz", "images", "images.tar.gz"]


def test_corrupt_gzip_stream_is_reported_as_damaged(tmp_path, world, unregister):
    folder = world / NAME
    good = _write_tar(tmp_path / "server" / "good.tar.gz",
                      [(f"images/{i}.jpg", tarfile.REGTYPE, "", bytes(range(256)) * 64) for i in range(20)])
    payload = bytearray(good.read_bytes())
    payload[12:40] = bytes(28)  # the start of the compressed stream overwritten
    archive = folder / "images.tar.gz"
    archive.write_bytes(bytes(payload))
    with pytest.raises(ArchiveError, match="damaged"):
        pets.ExtractArchive()(str(archive), "download")
    assert sorted(p.name for p in folder.iterdir()) == ["images.tar.gz"]
