"""The Oxford-IIIT Pet data set as a 3-class segmentation problem (the capstone's real data).

Oxford-IIIT Pet (Parkhi et al., CVPR 2012) has 7,390 photos of 37 cat and dog breeds, each with a
*trimap*: a PNG whose pixel values are

=========== ===================================== ============================
trimap PNG   meaning                               class index in this course
=========== ===================================== ============================
1            the pet                               1 (``"pet"``)
2            background                            0 (``"background"``)
3            border / not sure (outline band)      2 (``"border"``)
=========== ===================================== ============================

The course's convention is "class 0 is the background", so :func:`trimap_to_classes` maps
1 -> 1, 2 -> 0, 3 -> 2 (``PET_CLASS_NAMES = ("background", "pet", "border")``).

Data: two archives (``images.tar.gz``, 792 MB; ``annotations.tar.gz``, 19 MB) registered with
:mod:`course_utils.download` under the name ``"oxford-iiit-pet"``: downloaded on first use into
``<data dir>/oxford-iiit-pet/``, checked against their MD5 (the values torchvision's ``OxfordIIITPet``
uses), then unpacked. A download is written to a temporary file and moved into place only when its
checksum matches. The layout is the same as torchvision's, so a copy downloaded by torchvision works
when ``root`` points at it.

What unpacking guarantees (:class:`ExtractArchive`; tested with hostile archives in ``tests/test_unpacking.py``):

* **Nothing outside** ``<data dir>/oxford-iiit-pet/`` **is ever written, moved or deleted.** Every member
  of an archive is checked before anything is unpacked or removed: absolute names, ``..``, links pointing
  outside, members below a link, device files, FIFOs, duplicate names and top-level names the archive must
  not have (``images.tar.gz`` may create only ``images/``, ``annotations.tar.gz`` only ``annotations/``) are
  refused with :class:`ArchiveError`, a ValueError that names the member and says the archive is unsafe
  or damaged. ``tarfile``'s ``"data"`` filter checks every member a second time while unpacking.
* **Never half a data set.** Unpacking goes into a fresh ``tempfile`` folder inside the data set's folder;
  only the entries actually found there are moved into place with ``os.replace``, and every path is checked
  (by :mod:`course_utils.safety`) to lie inside the data set's folder before any move or delete.
* **A truncated or corrupt archive changes nothing**: the error says to delete the archive and download it
  again, and ``images/`` and ``annotations/`` stay as they were.
The official split files ``annotations/trainval.txt`` (3,680 images) and ``annotations/test.txt``
(3,669 images) choose the images.

For tests and fast mode, :func:`make_sample_archives` writes two small archives *in exactly the same
format* (synthetic "pets": textured ellipses with a trimap) and :func:`register_sample_pets` registers
them, with their checksums, under ``"oxford-iiit-pet-sample"``, so the whole path (download, checksum,
unpacking, split files, trimap mapping, resizing) runs offline.

Licence of the real data: Creative Commons Attribution-ShareAlike 4.0.
"""

from __future__ import annotations

import gzip
import io
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import unquote, urlparse

import numpy as np

from . import download as _download
from .download import ArchiveError, DataNotAvailableError, RemoteFile
from .safety import confined, remove, replace

__all__ = [
    "DATASET_NAME",
    "SAMPLE_DATASET_NAME",
    "PET_CLASS_NAMES",
    "TRIMAP_TO_CLASS",
    "URLS",
    "MIRRORS",
    "MD5",
    "trimap_to_classes",
    "load_pets",
    "read_split",
    "register_pets",
    "make_sample_archives",
    "register_sample_pets",
    "MirrorDownloader",
    "ExtractArchive",
    "ARCHIVE_TOPS",
    "check_members",
    "ArchiveError",
    "DataNotAvailableError",
]

DATASET_NAME = "oxford-iiit-pet"
SAMPLE_DATASET_NAME = "oxford-iiit-pet-sample"

#: Class names in the order of the class indices used by the course (0 = background).
PET_CLASS_NAMES = ("background", "pet", "border")

#: trimap PNG value -> course class index (1 = pet -> 1, 2 = background -> 0, 3 = border -> 2).
TRIMAP_TO_CLASS = {1: 1, 2: 0, 3: 2}

_ARCHIVES = ("images.tar.gz", "annotations.tar.gz")

#: Where the archives are downloaded from first.
URLS = {
    "images.tar.gz": "https://thor.robots.ox.ac.uk/datasets/pets/images.tar.gz",
    "annotations.tar.gz": "https://thor.robots.ox.ac.uk/datasets/pets/annotations.tar.gz",
}
#: URL -> further URLs tried in order when it fails (same files, same checksums).
MIRRORS = {
    URLS["images.tar.gz"]: ["https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz"],
    URLS["annotations.tar.gz"]: ["https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz"],
}
#: MD5 checksums of the archives (as in torchvision.datasets.OxfordIIITPet).
MD5 = {
    "images.tar.gz": "5c4f3ee8e5d25df40f4fd59a7f44e54c",
    "annotations.tar.gz": "95a8c909bbe2e81eed6a22bccdf3f68f",
}

#: archive file name -> the only top-level names it may create when unpacked.
ARCHIVE_TOPS = {"images.tar.gz": ("images",), "annotations.tar.gz": ("annotations",)}

_REQUIRED_PATHS = ("images", "annotations/trimaps", "annotations/trainval.txt", "annotations/test.txt")
_SPLITS = {"trainval": "trainval.txt", "test": "test.txt"}
_HELP = (
    "images/<name>.jpg, annotations/trimaps/<name>.png, annotations/trainval.txt and annotations/test.txt "
    "(images.tar.gz and annotations.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/pets/ unpacked there)"
)


# =========================================================================== class mapping
def trimap_to_classes(trimap) -> np.ndarray:
    """Map trimap PNG values to course class indices: 1 (pet) -> 1, 2 (background) -> 0, 3 (border) -> 2.

    trimap: integer array of any shape with values in {1, 2, 3}. Returns int64 of the same shape.
    Raises ValueError for any other value (e.g. a mask saved as 0/255 or a resized, interpolated trimap).
    """
    arr = np.asarray(trimap)
    if arr.dtype.kind not in "biu":
        raise TypeError(f"trimap must hold integers 1, 2, 3, got dtype {arr.dtype}: read the PNG without conversion.")
    lookup = np.full(256, -1, dtype=np.int64)
    for value, cls in TRIMAP_TO_CLASS.items():
        lookup[value] = cls
    unexpected = np.setdiff1d(np.unique(arr), list(TRIMAP_TO_CLASS))
    if unexpected.size:
        raise ValueError(
            f"trimap values must be 1 (pet), 2 (background) or 3 (border), found {unexpected[:5].tolist()}: "
            "pass the original annotations/trimaps/*.png, not a converted or resized copy."
        )
    return lookup[arr.astype(np.int64)]


# =========================================================================== download helpers
class MirrorDownloader:
    """A pooch downloader that tries the URL, then its mirrors; also copies ``file://`` URLs.

    mirrors: dict URL -> list of further URLs for that file (default :data:`MIRRORS`).
    ``file://`` URLs (a local or network-share copy of an archive, and the offline sample data) are
    copied; everything else goes through ``pooch.HTTPDownloader``. pooch writes to a temporary file
    and checks the hash before moving it into place, whichever URL succeeded.
    """

    def __init__(self, mirrors=None, progressbar: bool = True):
        self.mirrors = MIRRORS if mirrors is None else mirrors
        self.progressbar = progressbar

    def urls_for(self, url: str) -> list[str]:
        return [url] + [m for m in self.mirrors.get(url, []) if m != url]

    def __call__(self, url, output_file, pooch, check_only=False):
        errors = []
        for candidate in self.urls_for(url):
            try:
                return self._fetch_one(candidate, output_file, pooch, check_only)
            except Exception as error:  # try the next mirror
                errors.append(f"{candidate}: {type(error).__name__}: {error}")
        raise OSError("every URL failed: " + " | ".join(errors))

    def _fetch_one(self, url, output_file, pooch, check_only):
        parsed = urlparse(url)
        if parsed.scheme == "file":
            source = Path(unquote(parsed.path))
            if check_only:
                return source.is_file()
            if not source.is_file():
                raise FileNotFoundError(f"no file at {source}")
            if hasattr(output_file, "write"):
                with open(source, "rb") as handle:
                    shutil.copyfileobj(handle, output_file)
            else:
                shutil.copyfile(source, output_file)
            return None
        import pooch as _pooch

        downloader = _pooch.HTTPDownloader(progressbar=self.progressbar)
        if check_only:
            return downloader(url, output_file, pooch, check_only=True)
        return downloader(url, output_file, pooch)


class ExtractArchive:
    """pooch processor that unpacks a Pet ``.tar.gz`` next to it, safely and atomically.

    tops: archive file name -> the top-level names it may create (default :data:`ARCHIVE_TOPS`:
          ``images.tar.gz`` holds only ``images/``, ``annotations.tar.gz`` only ``annotations/``).
          An archive not listed may create any plain top-level name except its own file name.

    What it guarantees (see also the module docstring):

    1. Every member is checked *before* anything is extracted or removed (:func:`check_members`):
       absolute names, ``..`` components, backslashes, symbolic and hard links that point outside the
       archive's tree, members below a symbolic link, device files, FIFOs, duplicate names and top-level
       names the archive should not have are refused with :class:`ArchiveError` (a ValueError) naming the
       member and saying the archive is unsafe or damaged. Nothing has been written at that point.
    2. The archive is unpacked (with ``tarfile``'s ``"data"`` filter as a second line of defence) into a
       fresh ``tempfile`` folder inside the data set's folder; a truncated or corrupt archive raises
       :class:`ArchiveError` saying to delete it and download again, and the data folder is left as it was.
    3. Only the entries actually found in that staging folder are moved into place, each one checked by
       :mod:`course_utils.safety` to lie inside the data set's folder before any ``os.replace`` or delete;
       an older copy is moved aside and deleted only after the new one is in place.
    When the archive was already there (pooch's action ``"fetch"``) and its top-level entries exist,
    nothing is done.
    """

    def __init__(self, tops: dict | None = None):
        self.tops = ARCHIVE_TOPS if tops is None else {k: tuple(v) for k, v in tops.items()}

    def __call__(self, fname, action, pooch=None):
        archive = Path(fname)
        folder = archive.parent
        allowed = self.tops.get(archive.name)
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = tar.getmembers()  # reads every header: a truncated archive fails here
                tops = check_members(members, archive, allowed)
                if action == "fetch" and tops and all((folder / top).exists() for top in tops):
                    return [str(folder / top) for top in tops]
                staging = Path(tempfile.mkdtemp(prefix=f".{archive.name}.unpacking-", dir=folder))
                try:
                    _safe_extract(tar, staging)
                    _move_into_place(staging, folder, tops, archive)
                finally:
                    remove(staging, inside=folder)
        except ArchiveError:
            raise
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:  # not other OSErrors (disk full)
            raise ArchiveError(
                f"The archive {archive} is damaged (truncated or corrupt: {type(error).__name__}: {error}); "
                f"nothing in {folder} was changed. Delete {archive} and download again."
            ) from error
        return [str(folder / top) for top in tops]


def _unsafe(archive: Path, member: str, why: str) -> ArchiveError:
    return ArchiveError(
        f"The archive {archive.name} is unsafe or damaged: member {member!r} {why}. Nothing was unpacked; "
        f"delete {archive} and download it again from the official source."
    )


def check_members(members, archive, allowed_tops=None) -> list[str]:
    """Check every member of a tar archive before anything is unpacked; return the sorted top-level names.

    members:      ``tarfile.TarInfo`` objects (``tar.getmembers()``).
    archive:      the archive's path (for messages, and its own name is never a valid top-level name).
    allowed_tops: the top-level names the archive may create, or None for any plain name.
    Raises :class:`ArchiveError` naming the first bad member: absolute names, ``..``, backslashes,
    links pointing outside the archive's tree, members below a symbolic link, device files and FIFOs,
    duplicate names, and unexpected top-level names.
    """
    archive = Path(archive)
    seen: dict[str, tarfile.TarInfo] = {}
    symlinks: set[str] = set()
    tops: set[str] = set()
    for member in members:
        name = member.name
        if not name or "\x00" in name:
            raise _unsafe(archive, name, "has an empty or invalid name")
        if "\\" in name:
            raise _unsafe(archive, name, "contains a backslash (a Windows path that may point elsewhere)")
        if name.startswith("/") or PureWindowsPath(name).drive:
            raise _unsafe(archive, name, "has an absolute path and would be written outside the data folder")
        parts = PurePosixPath(name).parts
        if ".." in parts:
            raise _unsafe(archive, name, "contains '..' and would be written outside the data folder")
        if not parts:
            continue  # "." or "./": the archive's root itself
        if member.isdev() or member.isfifo() or not (member.isfile() or member.isdir()
                                                      or member.issym() or member.islnk()):
            raise _unsafe(archive, name, "is a device file, FIFO or other special file, which data never are")
        key = "/".join(parts)
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in symlinks:
                raise _unsafe(archive, name, "lies below a symbolic link and could be written through it")
        if member.issym() or member.islnk():
            link = member.linkname
            if not link or link.startswith("/") or "\\" in link or PureWindowsPath(link).drive:
                raise _unsafe(archive, name, f"is a link to {link!r}, outside the data folder")
            base = posixpath.dirname(key) if member.issym() else ""  # hard links are relative to the root
            target = posixpath.normpath(posixpath.join(base, link))
            if target == ".." or target.startswith("../") or target in (".", ""):
                raise _unsafe(archive, name, f"is a link to {link!r}, outside the data folder")
            if member.issym():
                symlinks.add(key)
        if key in seen and not (member.isdir() and seen[key].isdir()):
            raise _unsafe(archive, name, "appears twice (a second copy would silently replace the first)")
        seen[key] = member
        top = parts[0]
        if top == archive.name or top.startswith(f".{archive.name}.unpacking-"):
            raise _unsafe(archive, name, "would replace the archive itself or its unpacking folder")
        if allowed_tops is not None and top not in allowed_tops:
            expected = ", ".join(f"{t}/" for t in allowed_tops)
            raise _unsafe(archive, name, f"is not under {expected} (this archive may create only {expected}; "
                                         "the layout is not the expected one)")
        tops.add(top)
    for key, member in seen.items():  # a top-level name used both as a file and as a folder
        if "/" not in key and not member.isdir() and any(k.startswith(key + "/") for k in seen):
            raise _unsafe(archive, key, "is both a file and a folder")
    if not tops:
        raise _unsafe(archive, "", "is missing: the archive is empty")
    return sorted(tops)


def _safe_extract(tar: tarfile.TarFile, destination: Path) -> None:
    """Unpack the checked ``tar`` into the empty staging folder ``destination``."""
    if hasattr(tarfile, "data_filter"):  # Python 3.10.12+, 3.11.4+: the standard library re-checks every member
        try:
            tar.extractall(destination, filter="data")
        except tarfile.FilterError as error:
            raise ArchiveError(
                f"The archive {tar.name} is unsafe or damaged: {error}. Delete it and download it again."
            ) from error
        return
    tar.extractall(destination)  # older Pythons: check_members already refused everything unsafe


def _move_into_place(staging: Path, folder: Path, tops: list[str], archive: Path) -> None:
    """Move what is actually in ``staging`` into ``folder``; every path is checked to lie inside ``folder``."""
    found = sorted(entry.name for entry in staging.iterdir())
    if found != sorted(tops):
        raise _unsafe(archive, ", ".join(found), f"unpacked to other top-level names than its members list ({tops})")
    for top in found:
        source = confined(staging / top, staging, "move")
        target = confined(folder / top, folder, "replace")
        old = None
        if target.is_symlink() or target.exists():
            old = confined(staging / f".old-{top}", staging, "move")
            replace(target, old, inside=folder)  # keep the old copy until the new one is in place
        replace(source, target, inside=folder)
        if old is not None:
            remove(old, inside=staging)


def _files_for(urls: dict, hashes: dict) -> list[RemoteFile]:
    return [RemoteFile(url=urls[name], path=name, known_hash=hashes[name]) for name in _ARCHIVES]


def register_pets(name: str = DATASET_NAME, urls: dict | None = None, hashes: dict | None = None):
    """Register (or re-register) the Pet archives with :mod:`course_utils.download`; return the spec.

    urls:   archive file name -> URL (default :data:`URLS`; :data:`MIRRORS` are tried when it fails).
    hashes: archive file name -> ``"md5:<hex>"`` or ``"sha256:<hex>"`` (default :data:`MD5`).
    Done once on import for the real data set; call it yourself to point ``name`` at a local copy
    (``file://`` URLs work).
    """
    urls = dict(URLS if urls is None else urls)
    hashes = {k: (v if ":" in v else f"md5:{v}") for k, v in (MD5 if hashes is None else hashes).items()}
    missing = [a for a in _ARCHIVES if a not in urls or a not in hashes]
    if missing:
        raise ValueError(f"register_pets needs a URL and a hash for {missing}: pass urls={{...}} and hashes={{...}}.")
    return _download.register_dataset(
        name,
        files=_files_for(urls, hashes),
        processor=ExtractArchive,
        required_paths=_REQUIRED_PATHS,
        description=(
            "Oxford-IIIT Pet: 7,390 photos of 37 cat and dog breeds with trimaps "
            "(pet / background / border), 3,680 trainval and 3,669 test images."
        ),
        citation="O. M. Parkhi, A. Vedaldi, A. Zisserman, C. V. Jawahar. Cats and Dogs. CVPR 2012.",
        licence="Creative Commons Attribution-ShareAlike 4.0 International.",
        help=_HELP,
        overwrite=True,
    )


register_pets()


# =========================================================================== reading
def read_split(folder, split: str = "trainval") -> list[str]:
    """Image names of ``split`` ("trainval" or "test") from ``<folder>/annotations/<split>.txt``.

    Each line is ``<name> <class id> <species> <breed id>`` (e.g. ``Abyssinian_100 1 1 1``); lines
    starting with ``#`` and empty lines are skipped.
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {tuple(_SPLITS)}, got {split!r}.")
    path = Path(folder) / "annotations" / _SPLITS[split]
    if not path.is_file():
        raise DataNotAvailableError(f"The split file {path} is missing: the folder should hold {_HELP}.")
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.append(line.split()[0])
    if not names:
        raise ValueError(f"The split file {path} lists no images: it should have lines like 'Abyssinian_100 1 1 1'.")
    return names


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:  # some Pet "JPEGs" are PNG, greyscale or CMYK: convert them all to RGB
        return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def _read_trimap(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        arr = np.asarray(img)
    if arr.ndim == 3:  # a few tools save trimaps as RGB; the three channels are equal
        arr = arr[..., 0]
    try:
        return trimap_to_classes(arr)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def _evenly_spread(n: int, limit: int | None) -> np.ndarray:
    if limit is None or limit >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def load_pets(root=None, size: int = 128, limit: int | None = None, download: bool = True,
              split: str = "trainval", *, dataset: str = DATASET_NAME):
    """Oxford-IIIT Pet images and 3-class masks, resized to ``size`` x ``size``.

    root:     folder holding ``oxford-iiit-pet/`` (default ``course_utils.env.data_dir()``).
    size:     output height and width; images are resized bilinearly
              (:func:`course_utils.data.resize_image`), masks with nearest neighbour
              (:func:`course_utils.data.resize_mask`, which never invents classes). Aspect ratio is not kept.
    limit:    keep only this many images, spread evenly over the split (the split files are sorted by breed,
              so the first N images would all be one breed); None = all.
    download: when False, never go online (a missing data set raises :class:`DataNotAvailableError`).
    split:    "trainval" (3,680 images) or "test" (3,669), read from ``annotations/trainval.txt`` / ``test.txt``.
    dataset:  registered name to read (``SAMPLE_DATASET_NAME`` for the offline sample of
              :func:`register_sample_pets`).

    Returns:
        images float32 (N, size, size, 3) in [0, 1] and masks int64 (N, size, size) with
        0 = background, 1 = pet, 2 = border (see :data:`PET_CLASS_NAMES`).

    Memory: at size 256 the 3,680 trainval images take 2.9 GB (float32) plus 1.9 GB of masks (int64);
    use ``limit`` on small machines.
    """
    from .data import resize_image, resize_mask

    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer (pixels), got {size!r}.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be None or a positive integer, got {limit!r}.")
    if split not in _SPLITS:
        raise ValueError(f"split must be 'trainval' or 'test', got {split!r}.")

    folder = _download.fetch_dataset(dataset, root=root, download=download, downloader=MirrorDownloader())
    names = read_split(folder, split)
    chosen = [names[i] for i in _evenly_spread(len(names), limit)]

    images = np.empty((len(chosen), size, size, 3), dtype=np.float32)
    masks = np.empty((len(chosen), size, size), dtype=np.int64)
    progress = None
    if len(chosen) >= 500:
        from tqdm.auto import tqdm

        progress = tqdm(total=len(chosen), desc=f"Reading {split} images", leave=False)
    for i, name in enumerate(chosen):
        image_path = folder / "images" / f"{name}.jpg"
        trimap_path = folder / "annotations" / "trimaps" / f"{name}.png"
        for path in (image_path, trimap_path):
            if not path.is_file():
                raise DataNotAvailableError(
                    f"{path} is listed in annotations/{_SPLITS[split]} but missing: the unpacked data set in {folder} "
                    "is incomplete; delete that folder so that it is downloaded and unpacked again."
                )
        images[i] = resize_image(_read_rgb(image_path), size)
        masks[i] = resize_mask(_read_trimap(trimap_path), size)
        if progress is not None:
            progress.update(1)
    if progress is not None:
        progress.close()
    return images, masks


# =========================================================================== offline sample in the same format
def _sample_pair(rng: np.random.Generator, height: int, width: int, band: float):
    """One synthetic photo (uint8 RGB) and its trimap (uint8, values 1/2/3): a textured ellipse 'pet'."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cy, cx = rng.uniform(0.35, 0.65) * height, rng.uniform(0.35, 0.65) * width
    ay, ax = rng.uniform(0.18, 0.35) * height, rng.uniform(0.18, 0.35) * width
    angle = rng.uniform(0, np.pi)
    dy, dx = yy - cy, xx - cx
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    radius = np.sqrt((u / ax) ** 2 + (v / ay) ** 2)
    distance = (radius - 1.0) * min(ax, ay)  # ~ signed distance to the outline in pixels

    trimap = np.where(distance < 0, 1, 2).astype(np.uint8)
    trimap[np.abs(distance) <= band] = 3

    background = rng.uniform(0.2, 0.8, size=3)
    fur = rng.uniform(0.1, 0.9, size=3)
    stripes = 0.5 + 0.5 * np.sin(u / rng.uniform(1.5, 4.0))
    image = background + 0.15 * rng.standard_normal((height, width, 3))
    pet = fur * (0.7 + 0.3 * stripes[..., None]) + 0.05 * rng.standard_normal((height, width, 3))
    inside = (distance < 0)[..., None]
    image = np.where(inside, pet, image)
    image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    return image, trimap


def _add_bytes(tar: tarfile.TarFile, arcname: str, payload: bytes) -> None:
    info = tarfile.TarInfo(arcname)
    info.size = len(payload)
    info.mtime = 0
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(payload))


def make_sample_archives(folder, num_trainval: int = 24, num_test: int = 8, seed: int = 0,
                         min_size: int = 48, max_size: int = 96, border_width: float = 1.5) -> dict:
    """Write ``images.tar.gz`` and ``annotations.tar.gz`` in the Oxford-IIIT Pet format into ``folder``.

    Synthetic photos (a striped ellipse "pet" on a noisy background; JPEG, sizes between ``min_size`` and
    ``max_size``, different per image like the real photos) with trimaps (PNG values 1 pet, 2 background,
    3 a band of about ``border_width`` pixels around the outline) and the split files
    ``annotations/trainval.txt`` / ``test.txt`` / ``list.txt``. Deterministic by ``seed``.

    Returns:
        dict archive file name -> Path of the written archive.
    """
    from PIL import Image

    if num_trainval < 1 or num_test < 1:
        raise ValueError("make_sample_archives needs at least one trainval and one test image.")
    if not 8 <= min_size <= max_size:
        raise ValueError(f"need 8 <= min_size <= max_size, got min_size={min_size}, max_size={max_size}.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    total = num_trainval + num_test
    # Names like the real ones: cats capitalised, dogs lower case, "<breed>_<number>".
    names = [("Sample_cat" if i % 2 == 0 else "sample_dog") + f"_{i + 1}" for i in range(total)]
    order = rng.permutation(total)
    trainval = sorted(names[i] for i in order[:num_trainval])
    test = sorted(names[i] for i in order[num_trainval:])

    def line(name):
        cat = name.startswith("Sample")
        return f"{name} {1 if cat else 2} {1 if cat else 2} 1\n"

    paths = {name: folder / name for name in _ARCHIVES}
    with tarfile.open(paths["images.tar.gz"], "w:gz") as images_tar, \
            tarfile.open(paths["annotations.tar.gz"], "w:gz") as annotations_tar:
        for name in names:
            height, width = (int(v) for v in rng.integers(min_size, max_size + 1, size=2))
            image, trimap = _sample_pair(rng, height, width, border_width)
            jpeg, png = io.BytesIO(), io.BytesIO()
            Image.fromarray(image, mode="RGB").save(jpeg, format="JPEG", quality=90)
            Image.fromarray(trimap, mode="L").save(png, format="PNG")
            _add_bytes(images_tar, f"images/{name}.jpg", jpeg.getvalue())
            _add_bytes(annotations_tar, f"annotations/trimaps/{name}.png", png.getvalue())
        # The real archive also holds macOS "._" files next to the trimaps: the loader must ignore them.
        _add_bytes(annotations_tar, f"annotations/trimaps/._{names[0]}.png", b"\x00\x05\x16\x07 not an image")
        _add_bytes(annotations_tar, "annotations/trainval.txt", "".join(line(n) for n in trainval).encode())
        _add_bytes(annotations_tar, "annotations/test.txt", "".join(line(n) for n in test).encode())
        header = "#Image CLASS-ID SPECIES BREED ID\n#ID: 1:37 Class ids\n#SPECIES: 1:Cat 2:Dog\n"
        _add_bytes(annotations_tar, "annotations/list.txt", (header + "".join(line(n) for n in sorted(names))).encode())
    return paths


def register_sample_pets(folder, name: str = SAMPLE_DATASET_NAME, **sample_options):
    """Write the sample archives into ``folder`` and register them (``file://`` URLs + their MD5) as ``name``.

    ``sample_options`` go to :func:`make_sample_archives`. Then
    ``load_pets(root=<another folder>, dataset=name)`` "downloads" (copies) them with the checksum check
    and unpacks them exactly like the real archives. Returns the registered spec.
    """
    paths = make_sample_archives(folder, **sample_options)
    urls = {archive: path.resolve().as_uri() for archive, path in paths.items()}
    hashes = {archive: "md5:" + _download.file_hash(path, "md5") for archive, path in paths.items()}
    return register_pets(name=name, urls=urls, hashes=hashes)
