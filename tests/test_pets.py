"""course_utils.pets: the Oxford-IIIT Pet loader, exercised offline on small archives in the real format."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
from PIL import Image

from course_utils import download, pets
from course_utils.data import resize_mask
from course_utils.download import DataNotAvailableError

NAME = "pets-under-test"


def _tar(path, members: dict):
    with tarfile.open(path, "w:gz") as tar:
        for arcname, payload in members.items():
            info = tarfile.TarInfo(arcname)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


def _png(array, mode):
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _register(server, name=NAME):
    """Register the archives in ``server`` under ``name`` with file:// URLs and their real MD5."""
    urls = {a: (server / a).resolve().as_uri() for a in ("images.tar.gz", "annotations.tar.gz")}
    hashes = {a: "md5:" + download.file_hash(server / a, "md5") for a in urls}
    return pets.register_pets(name=name, urls=urls, hashes=hashes)


def test_the_real_archives_are_registered_with_torchvisions_md5():
    spec = download.get_dataset(pets.DATASET_NAME)
    hashes = {f.path: f.known_hash for f in spec.files}
    assert hashes == {
        "images.tar.gz": "md5:5c4f3ee8e5d25df40f4fd59a7f44e54c",
        "annotations.tar.gz": "md5:95a8c909bbe2e81eed6a22bccdf3f68f",
    }
    urls = {f.path: f.url for f in spec.files}
    assert urls["images.tar.gz"].startswith("https://thor.robots.ox.ac.uk/")
    assert pets.MIRRORS[urls["images.tar.gz"]] == ["https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz"]


def test_trimap_values_map_to_course_classes():
    trimap = np.array([[1, 2, 3], [3, 2, 1]], dtype=np.uint8)
    np.testing.assert_array_equal(pets.trimap_to_classes(trimap), [[1, 0, 2], [2, 0, 1]])
    assert pets.PET_CLASS_NAMES == ("background", "pet", "border")
    with pytest.raises(ValueError, match="1 \\(pet\\), 2 \\(background\\) or 3 \\(border\\)"):
        pets.trimap_to_classes(np.array([0, 255], dtype=np.uint8))
    with pytest.raises(TypeError):
        pets.trimap_to_classes(np.array([1.0, 2.0]))


def test_hand_made_archive_gives_exact_classes_and_split(tmp_path, unregister):
    """A 2-image archive built by hand: known trimaps, one grey JPEG, list files with a '#' header."""
    server = tmp_path / "server"
    server.mkdir()
    trimap_a = np.full((8, 8), 2, np.uint8)
    trimap_a[2:6, 2:6] = 3
    trimap_a[3:5, 3:5] = 1
    trimap_b = np.full((6, 10), 1, np.uint8)
    rgb = (np.arange(8 * 8 * 3).reshape(8, 8, 3) % 256).astype(np.uint8)
    grey = np.full((6, 10), 128, np.uint8)
    _tar(server / "images.tar.gz", {
        "images/Cat_1.png": _png(rgb, "RGB"),  # stored as .jpg below: some real "JPEGs" are PNGs
        "images/Cat_1.jpg": _png(rgb, "RGB"),
        "images/dog_2.jpg": _png(grey, "L"),  # greyscale photo -> converted to RGB
    })
    _tar(server / "annotations.tar.gz", {
        "annotations/trimaps/Cat_1.png": _png(trimap_a, "L"),
        "annotations/trimaps/dog_2.png": _png(trimap_b, "L"),
        "annotations/trainval.txt": b"Cat_1 1 1 1\n",
        "annotations/test.txt": b"# a comment line\n\ndog_2 2 2 1\n",
    })
    _register(server)
    root = tmp_path / "data"

    images, masks = pets.load_pets(root=root, size=8, dataset=NAME)
    assert images.shape == (1, 8, 8, 3) and images.dtype == np.float32
    assert masks.shape == (1, 8, 8) and masks.dtype == np.int64
    np.testing.assert_array_equal(masks[0], pets.trimap_to_classes(trimap_a))
    np.testing.assert_allclose(images[0], rgb / 255.0, atol=1e-6)
    assert set(np.unique(masks)) == {0, 1, 2}

    images, masks = pets.load_pets(root=root, size=4, split="test", dataset=NAME)
    assert images.shape == (1, 4, 4, 3) and masks.shape == (1, 4, 4)
    assert np.all(masks == 1)  # trimap value 1 (pet) -> class 1
    np.testing.assert_allclose(images[0], 128 / 255.0, atol=1e-6)  # grey -> equal RGB channels
    assert pets.read_split(root / NAME, "test") == ["dog_2"]


def test_sample_archives_load_with_resizing_and_limit(tmp_path, unregister):
    pets.register_sample_pets(tmp_path / "server", name=NAME, num_trainval=6, num_test=3, seed=1)
    root = tmp_path / "data"
    images, masks = pets.load_pets(root=root, size=32, dataset=NAME)
    assert images.shape == (6, 32, 32, 3) and masks.shape == (6, 32, 32)
    assert images.dtype == np.float32 and masks.dtype == np.int64
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert set(np.unique(masks)) == {0, 1, 2}  # every class occurs
    # Masks are the nearest-neighbour resize of the mapped trimaps (never interpolated).
    folder = root / NAME
    first = pets.read_split(folder, "trainval")[0]
    raw = np.asarray(Image.open(folder / "annotations" / "trimaps" / f"{first}.png"))
    np.testing.assert_array_equal(masks[0], resize_mask(pets.trimap_to_classes(raw), 32))
    # Archives are unpacked in place, with no staging folders left behind.
    assert sorted(p.name for p in folder.iterdir()) == ["annotations", "annotations.tar.gz", "images", "images.tar.gz"]

    test_images, test_masks = pets.load_pets(root=root, size=16, split="test", limit=2, dataset=NAME)
    assert test_images.shape == (2, 16, 16, 3) and test_masks.shape == (2, 16, 16)
    with pytest.raises(ValueError, match="split"):
        pets.load_pets(root=root, split="train", dataset=NAME)
    with pytest.raises(ValueError, match="size"):
        pets.load_pets(root=root, size=0, dataset=NAME)


def test_limit_is_spread_over_the_sorted_split():
    assert pets._evenly_spread(10, 3).tolist() == [0, 4, 9]  # noqa: SLF001 - documented behaviour
    assert pets._evenly_spread(4, None).tolist() == [0, 1, 2, 3]


def test_corrupted_archive_fails_the_checksum_and_nothing_is_kept(tmp_path, unregister):
    server = tmp_path / "server"
    pets.register_sample_pets(server, name=NAME, num_trainval=2, num_test=1)  # hashes of the good archives
    archive = server / "images.tar.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    root = tmp_path / "data"
    with pytest.raises(DataNotAvailableError, match="checksum"):
        pets.load_pets(root=root, dataset=NAME)
    assert not (root / NAME / "images.tar.gz").exists()
    assert not (root / NAME / "images").exists()


def test_corrupted_archive_already_on_disk_is_reported(tmp_path, unregister):
    server = tmp_path / "server"
    pets.register_sample_pets(server, name=NAME, num_trainval=2, num_test=1)
    folder = tmp_path / "data" / NAME
    folder.mkdir(parents=True)
    (folder / "images.tar.gz").write_bytes(b"half a download")
    with pytest.raises(ValueError, match="corrupted"):
        pets.load_pets(root=tmp_path / "data", dataset=NAME)


def test_offline_without_a_copy_is_one_clear_error(tmp_path, unregister):
    with pytest.raises(DataNotAvailableError, match="download=False") as info:
        pets.load_pets(root=tmp_path, download=False)
    assert "oxford-iiit-pet" in str(info.value) and "COURSE_DATA_DIR" in str(info.value)
    # "Online" but every URL unreachable (here: file:// URLs to nothing) -> the same kind of error.
    missing = (tmp_path / "nowhere" / "x.tar.gz").as_uri()
    pets.register_pets(name=NAME, urls={"images.tar.gz": missing, "annotations.tar.gz": missing},
                       hashes={"images.tar.gz": "md5:0", "annotations.tar.gz": "md5:0"})
    with pytest.raises(DataNotAvailableError, match="Could not download"):
        pets.load_pets(root=tmp_path / "data", dataset=NAME)


def test_mirror_is_used_when_the_first_url_fails(tmp_path, unregister):
    server = tmp_path / "server"
    paths = pets.make_sample_archives(server, num_trainval=2, num_test=1)
    hashes = {a: "md5:" + download.file_hash(p, "md5") for a, p in paths.items()}
    dead = {a: (tmp_path / "dead" / a).as_uri() for a in paths}
    pets.register_pets(name=NAME, urls=dead, hashes=hashes)
    mirrors = {dead[a]: [p.resolve().as_uri()] for a, p in paths.items()}
    downloader = pets.MirrorDownloader(mirrors=mirrors)
    assert downloader.urls_for(dead["images.tar.gz"]) == [dead["images.tar.gz"], paths["images.tar.gz"].resolve().as_uri()]
    folder = download.fetch_dataset(NAME, root=tmp_path / "data", downloader=downloader)
    assert (folder / "images").is_dir() and (folder / "annotations" / "trimaps").is_dir()


def test_missing_listed_file_names_the_fix(tmp_path, unregister):
    pets.register_sample_pets(tmp_path / "server", name=NAME, num_trainval=2, num_test=1)
    root = tmp_path / "data"
    pets.load_pets(root=root, size=8, dataset=NAME)
    name = pets.read_split(root / NAME, "trainval")[0]
    (root / NAME / "images" / f"{name}.jpg").unlink()
    with pytest.raises(DataNotAvailableError, match="delete that folder"):
        pets.load_pets(root=root, size=8, dataset=NAME)


def test_archive_members_outside_the_folder_are_refused(tmp_path, unregister):
    server = tmp_path / "server"
    server.mkdir()
    _tar(server / "images.tar.gz", {"../escaped.txt": b"should never be written", "images/a.jpg": b"x"})
    _tar(server / "annotations.tar.gz", {"annotations/trainval.txt": b"a 1 1 1\n"})
    _register(server)
    # The download worked: the error says the archive is unsafe and names the member, not "could not download".
    with pytest.raises(pets.ArchiveError, match=r"unsafe or damaged: member '\.\./escaped\.txt'"):
        pets.load_pets(root=tmp_path / "data", dataset=NAME)
    assert not (tmp_path / "data" / "escaped.txt").exists()
    assert not (tmp_path / "data" / NAME / "images").exists()
