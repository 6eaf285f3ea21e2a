"""A tiny registry of data sets and one function that fetches them.

Every data set is registered once (name, where its files come from, their
checksums) and fetched with :func:`fetch_dataset`, in the spirit of d2l.ai::

    from course_utils.download import fetch_dataset
    folder = fetch_dataset("isbi2012-membrane")   # -> <data dir>/isbi2012-membrane/

Where the data lives: ``<root>/<name>/`` with ``root`` defaulting to
``course_utils.env.data_dir()`` (``$COURSE_DATA_DIR`` when set, otherwise the
user cache folder).

* Files that are already there are **verified** (checksum) and never written
  to, so a read-only shared copy works.
* Missing files are downloaded with `pooch <https://www.fatiando.org/pooch>`_:
  each file is streamed to a temporary file next to its final place, its hash
  is checked and only then is it moved into place, so a half-written or
  corrupted download is never mistaken for data.
* Offline, or with ``download=False``, a single :class:`DataNotAvailableError`
  says where it looked and how to get the data.

Other modules register more data sets with :func:`register_dataset`, including
archives that are unpacked after download (pass a pooch processor and the
paths that exist once it is unpacked)::

    register_dataset(
        "oxford-iiit-pet",
        files=[RemoteFile(url=".../images.tar.gz", path="images.tar.gz", known_hash="md5:...")],
        processor=lambda: pooch.Untar(extract_dir="."),
        required_paths=["images", "annotations/trimaps"],
    )
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

__all__ = [
    "DataNotAvailableError",
    "ArchiveError",
    "RemoteFile",
    "DatasetSpec",
    "register_dataset",
    "registered_datasets",
    "get_dataset",
    "fetch_dataset",
    "verify_file",
    "file_hash",
]


class DataNotAvailableError(RuntimeError):
    """The data set is neither on disk nor downloadable right now (offline, ``download=False``)."""


class ArchiveError(ValueError):
    """A downloaded archive is unsafe (a member would land outside its folder) or damaged (truncated, wrong layout).

    Raised by unpacking processors such as :class:`course_utils.pets.ExtractArchive`; :func:`fetch_dataset`
    passes it on unchanged (the download itself worked, so "could not download" would be wrong).
    """


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set.

    url:        where to download it from.
    path:       where it is stored, relative to the data set's folder (e.g. ``"images/0.png"``).
    known_hash: ``"sha256:<hex>"`` or ``"md5:<hex>"`` (a bare hex string means SHA-256).
    """

    url: str
    path: str
    known_hash: str

    def __post_init__(self):
        if ":" not in self.known_hash:
            object.__setattr__(self, "known_hash", f"sha256:{self.known_hash}")
        algorithm = self.known_hash.split(":", 1)[0].lower()
        if algorithm not in {"sha256", "md5", "sha1", "sha512"}:
            raise ValueError(
                f"Unknown hash algorithm {algorithm!r} for {self.path}: write the hash as 'sha256:<hex>' or 'md5:<hex>'."
            )
        if Path(self.path).is_absolute() or ".." in Path(self.path).parts:
            raise ValueError(f"RemoteFile path {self.path!r} must be relative and stay inside the data set's folder.")


@dataclass(frozen=True)
class DatasetSpec:
    """A registered data set.

    files:          the files to download (plain files or archives).
    processor:      ``None`` for plain files, or a zero-argument callable returning a pooch processor
                    (e.g. ``lambda: pooch.Untar(extract_dir=".")``) that unpacks each downloaded archive.
                    ``extract_dir`` is relative to the archive's folder.
    required_paths: paths (relative to the data set's folder) that must exist for the data set to count as
                    present. Defaults to every file's ``path``. For archives, list what unpacking creates,
                    so that the archive itself may be deleted after unpacking.
    description / citation / licence: shown in error messages and notebooks.
    """

    name: str
    files: tuple[RemoteFile, ...]
    processor: Callable | None = None
    required_paths: tuple[str, ...] = ()
    description: str = ""
    citation: str = ""
    licence: str = ""
    help: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def needed_paths(self) -> tuple[str, ...]:
        return self.required_paths or tuple(f.path for f in self.files)


_REGISTRY: dict[str, DatasetSpec] = {}


def register_dataset(
    name: str,
    files: Sequence[RemoteFile],
    processor: Callable | None = None,
    required_paths: Sequence[str] = (),
    description: str = "",
    citation: str = "",
    licence: str = "",
    help: str = "",
    overwrite: bool = False,
) -> DatasetSpec:
    """Register a data set under ``name`` (stored in ``<data dir>/<name>/``) and return its spec.

    Registering the same name twice raises unless ``overwrite=True`` (or the spec is identical).
    """
    if not name or "/" in name or "\\" in name:
        raise ValueError(f"Data set name {name!r} must be a non-empty folder name without slashes.")
    files = tuple(files)
    if not files:
        raise ValueError(f"register_dataset({name!r}) needs at least one RemoteFile.")
    spec = DatasetSpec(
        name=name,
        files=files,
        processor=processor,
        required_paths=tuple(required_paths),
        description=description,
        citation=citation,
        licence=licence,
        help=help,
    )
    old = _REGISTRY.get(name)
    if old is not None and not overwrite and old != spec:
        raise ValueError(f"A data set named {name!r} is already registered: pick another name or pass overwrite=True.")
    _REGISTRY[name] = spec
    return spec


def registered_datasets() -> list[str]:
    """Names of all registered data sets."""
    return sorted(_REGISTRY)


def get_dataset(name: str) -> DatasetSpec:
    """The spec registered under ``name`` (raises KeyError naming the known ones)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"No data set named {name!r} is registered; known: {', '.join(registered_datasets()) or 'none'}. "
            "Register it with course_utils.download.register_dataset(...)."
        ) from None


def file_hash(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file (``algorithm`` = "sha256", "md5", ...)."""
    import pooch

    return pooch.file_hash(str(path), alg=algorithm)


def verify_file(path: str | os.PathLike, known_hash: str) -> None:
    """Raise ValueError if the file at ``path`` does not have ``known_hash`` ("sha256:<hex>")."""
    if ":" not in known_hash:
        known_hash = f"sha256:{known_hash}"
    algorithm, expected = known_hash.split(":", 1)
    actual = file_hash(path, algorithm.lower())
    if actual.lower() != expected.lower():
        raise ValueError(
            f"The file {path} is corrupted or not the expected version ({algorithm} is {actual[:12]}..., "
            f"expected {expected[:12]}...): delete it (or its whole folder) so that it is downloaded again."
        )


def _retrieve(url: str, known_hash: str, fname: str, path: str, processor=None, downloader=None):
    """Thin wrapper around :func:`pooch.retrieve` (tests replace it to simulate being offline)."""
    import pooch

    return pooch.retrieve(
        url,
        known_hash=known_hash,
        fname=fname,
        path=path,
        processor=processor,
        downloader=downloader,
        progressbar=False,
    )


#: Retries of a download that failed for a reason that goes away (HTTP 429 "too many requests",
#: 5xx, connection errors, time-outs), with exponential back-off from ``RETRY_BASE_SECONDS``.
RETRIES = 4
RETRY_BASE_SECONDS = 2.0
_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


def _sleep(seconds: float) -> None:  # tests replace it: no real waiting
    import time

    time.sleep(seconds)


def _retry_delay(error: BaseException, attempt: int) -> float | None:
    """Seconds to wait before retrying after ``error`` (attempt 0, 1, ...), or None if retrying is useless.

    A server's ``Retry-After`` header (seconds, at most 60) wins over the back-off.
    """
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if status is not None:
        if status not in _TRANSIENT_STATUS:
            return None  # 404, 403, ...: asking again will not help
        retry_after = (getattr(response, "headers", None) or {}).get("Retry-After")
        try:
            if retry_after is not None:
                return min(float(retry_after), 60.0)
        except ValueError:
            pass
        return RETRY_BASE_SECONDS * 2**attempt
    names = {cls.__name__ for cls in type(error).__mro__}
    if names & {"ConnectionError", "Timeout", "TimeoutError", "ChunkedEncodingError"}:
        return RETRY_BASE_SECONDS * 2**attempt
    return None


def _retrieve_with_retries(url: str, **kwargs):
    """:func:`_retrieve`, retried up to ``RETRIES`` times with back-off when the error is transient."""
    for attempt in range(RETRIES + 1):
        try:
            return _retrieve(url, **kwargs)
        except Exception as error:
            delay = _retry_delay(error, attempt)
            if delay is None or attempt == RETRIES:
                raise
            _sleep(delay)


def _how_to_get(spec: DatasetSpec, folder: Path) -> str:
    from . import env

    layout = spec.help or ", ".join(spec.needed_paths[:3]) + (", ..." if len(spec.needed_paths) > 3 else "")
    return (
        f"To get it, either go online and run again (it is downloaded to {folder}), or download it yourself and set "
        f"the environment variable {env.DATA_ENV_VAR} to a folder holding {spec.name}/ with {layout} "
        f"(or pass root=...)."
    )


def fetch_dataset(name: str, root: str | os.PathLike | None = None, download: bool = True, downloader=None) -> Path:
    """Make sure data set ``name`` is on disk, verified, and return its folder ``<root>/<name>/``.

    root:       folder that holds the data sets; default ``course_utils.env.data_dir()``.
    download:   when False, never go online: missing files raise :class:`DataNotAvailableError`.
    downloader: optional pooch downloader (for tests or mirrors).

    Files already present are checked against their hashes (ValueError naming a corrupted file) and
    never modified. Missing files are downloaded atomically (temporary file, hash check, move).
    """
    from . import env

    spec = get_dataset(name)
    base = Path(root).expanduser() if root is not None else env.data_dir()
    folder = base / spec.name
    needed = spec.needed_paths
    missing = [p for p in needed if not (folder / p).exists()]
    if missing and base.name == spec.name and all((base / p).exists() for p in needed):
        raise ValueError(
            f"root={base} is the data set's own folder: pass the folder that holds {spec.name}/, i.e. root={base.parent}."
        )

    if not missing:
        # Everything is there: verify what we can (plain files, and archives that were kept).
        for remote in spec.files:
            target = folder / remote.path
            if target.is_file():
                verify_file(target, remote.known_hash)
        return folder

    if not download:
        raise DataNotAvailableError(
            f"Data set {spec.name!r} is not complete in {folder} ({len(missing)} of {len(needed)} files missing, "
            f"e.g. {missing[0]}) and download=False. " + _how_to_get(spec, folder)
        )

    # Verify files that already exist, then download the missing ones (pooch: temp file + hash check + move).
    # Archives are always handed to pooch, which skips the download when the archive is there and valid
    # and then runs the processor (unpacking).
    to_fetch = []
    for remote in spec.files:
        target = folder / remote.path
        if target.is_file():
            verify_file(target, remote.known_hash)
            if spec.processor is None:
                continue
        to_fetch.append(remote)

    for remote in to_fetch:
        target = folder / remote.path
        processor = spec.processor() if spec.processor is not None else None
        try:
            _retrieve_with_retries(
                remote.url,
                known_hash=remote.known_hash,
                fname=target.name,
                path=str(target.parent),
                processor=processor,
                downloader=downloader,
            )
        except ArchiveError:  # the download worked; the archive is unsafe or damaged: say exactly that
            raise
        except ValueError as error:  # hash mismatch of a fresh download
            raise DataNotAvailableError(
                f"Downloading {remote.url} for data set {spec.name!r} gave a file with the wrong checksum "
                f"({error}); nothing was saved at {target}. Try again later. " + _how_to_get(spec, folder)
            ) from error
        except Exception as error:  # offline, HTTP error, read-only folder, ...
            missing = [p for p in needed if not (folder / p).exists()]  # files fetched before this one count
            raise DataNotAvailableError(
                f"Could not download data set {spec.name!r}: looked in {folder} ({len(missing)} of {len(needed)} "
                f"files missing, e.g. {missing[0] if missing else remote.path}) and downloading {remote.url} "
                f"failed (after {RETRIES} retries if the error looked temporary) with "
                f"{type(error).__name__}: {error}. " + _how_to_get(spec, folder)
            ) from error

    still_missing = [p for p in needed if not (folder / p).exists()]
    if still_missing:
        raise DataNotAvailableError(
            f"Data set {spec.name!r} was downloaded to {folder} but {still_missing[0]} is still missing "
            "(the registry entry's required_paths do not match what the download created)."
        )
    return folder


# --------------------------------------------------------------------------- registered data sets
_ISBI_BASE = "https://raw.githubusercontent.com/zhixuhao/unet/master/data/membrane/train"
# SHA-256 of the 30 training slices and their label masks as published in zhixuhao/unet.
_ISBI_IMAGE_SHA256 = {
    0: "12c0ed6f42fc09f512abf6b354f217c950e4c8223b57a0315449b62a14556523",
    1: "2cfc7ee635a6f85d5faf5c82a71d3a37bf5af4784b554964e3e07193e3ee2166",
    2: "fe60d8d4f93102666a23a18d718b4b59fab8e616987d11c5072f4a87fac7301f",
    3: "636d16cbb02f99dda4c9fb6db98dfba066142afa981ffdcfaf54453982e8250c",
    4: "991fb3a8e4abc73da1d6159ca28fa4397f0a8351f30a8ba3669c86414d2ce239",
    5: "7e9d9fb787664336d6f2cd68b23986f04527e7f8f494410983b4d70c6de1de3b",
    6: "7c0a87933ffc72f4ff02f5996d9c3f69fe9a0b5277507415743ad8afb5e5d308",
    7: "19f2c25716107d41008c83ba8a814ae47a090e00dea766dde38dce1f00899270",
    8: "a8979e4abd1a10af9ca75e614d97875659adbd8ee3a68eba483bf556cfe3023d",
    9: "730ebf435ab0f6e625d342552ad03736799fd660d0c6af744674c61a46aa082a",
    10: "7c3717bcd48c4b7e5c878d7f0b809b8687a4e6fac471f3863de320a82ee72b8a",
    11: "dd7857b25ca1417f87c282750e22c50947f75e81fa032d4e0c96b902c9dc9757",
    12: "9f8eff9239bb764d51524a998387a7babcff9f62161804651b030b81aabd5ab8",
    13: "377e5cdbcd7f0ac7336f482fc7ead7446887863f26769b3841fe98aadca77dad",
    14: "f50d2d77acd2df564c5f0f40b1b24cd929f5944460aa4cd90c422cb5cef33a59",
    15: "3e13fdea09accc14f46fb2f3ffa1e882cdd9c53b28a6842c4c10229692c7d1a4",
    16: "ffc951c12450f94129582c16fd0d4b165c4a31469b0c42d966f07c183d3132e2",
    17: "0f4f7e8e0619e4c7d517ac68d3789a3b6248253747717eac418bb7d32bef4de3",
    18: "1bb1edd50595861743d14e1955dfa5d3c9395fb87563eca6dc81433bf9df49de",
    19: "999b55633f8d7082add72082656e9532c5c3d97203b376eb317f09ba88a5a5b7",
    20: "9153d14bfd15955fab576ea23281c4f23104b45dceed6e03e0b254607f50a1b2",
    21: "9ad07cf4f67984f17a08aa63e6d92d395ce55f5132e6ff4fa6d95d6890ea7f97",
    22: "6278609b4c42a7cb43212de0e2e2ceded758bafe0856fb56214ce658a61668e4",
    23: "9ef4e9fbc838b9791af83a36918d729a0ea2e90ebc71c4a3c4554059f9379756",
    24: "f0f917b9c3e9c96d16ea287aff9b05ecf4de88bc61d478e4aefcb64932fba70c",
    25: "e0154737e76392e8bf94fb2c0dfa5ddad4b53aeec942a0a8cdd8ba63443e6072",
    26: "d0ff11e09b0ee0c817334946e746a38ab621161d5f9c46af95c68b851f8d9a1a",
    27: "eed8e8bee1db8fe7af39b5b43ecf14282c5c33eca0959726eea06f662027eacc",
    28: "974df4b51e8905bdaabe61e80496cbf331f5c9aa9ddc2cb94113f58c2b7d2837",
    29: "d9ae868509c610a69acbf3d69cde4f36a8e344cbbc444f93c917bf7b9f3e784f",
}
_ISBI_MASK_SHA256 = {
    0: "13b67edd7607a1f284c09170c96a27d38422b0ffaf88024ea5b689acb5e1b4b0",
    1: "cff60a00de2901e67165c91d7708d784e4c5bcc9d1c8c677922c905d63bbc3d1",
    2: "a578af998c017f56763b81941c4dc612dde5731809b2cea0e8ebc37aecb84dbb",
    3: "c8ae3b843fed02e09411a24c10850160922c331041b17c2674025f05a99b8834",
    4: "a2f19c01b5d982a97923a0d29e64127a05e3f496731480ac9d9d302b5427f7ff",
    5: "2dd5779118f6f4d87f88ec112f1cea20663b50acb8c748b0db1f23eda82b5118",
    6: "2b0984e9f31fb41d4c5f4a754a3e080036b7321a0cbd9591a62010d20a574ce7",
    7: "2ebc8c835999589bfd7d80d81f83d24e5c41138362b0faafef0f009e1ce82144",
    8: "db979010ca4fbdb38c8b32d455aed0da90d598153f2a0046b63d02a6efa32b9e",
    9: "8ee6c79adbb740595c4d61776e065e7164c00d52c7dd7562b5279041e7f3567b",
    10: "b0156cc8186b0ee521927ac95645b406a42d27564607a6fea3a59c34add78f7c",
    11: "e47b3aa0cfb3106476af1666e631d45bd16dbf2aff88260ee65d16e4134332db",
    12: "85a7a899c0b72b81633ad122887ba5161d650385d7775a5b3074eb00131b3620",
    13: "88549c22fd647312d6b37e17d33e90800d347d60ccb1156a8dde5e67394f9f3d",
    14: "bcd775017eb4fdbdfe7ad6cc6420b2f16aa9d0576894d08370edcf564b46680a",
    15: "59a854887b504ff00a5b4b93b2299bbc0bf0cbe54dea58d2b31969229b28b369",
    16: "b34eb88cdc3313a6f4190f5753465df7f69d8f3c243a5c25427b1b99ecfe2499",
    17: "4fa076cbeb744803d987dc46cf308dc3026408e7a5188838e30e25fe3ea67dbe",
    18: "bd009dda57f204804732f592ed1d41ba18961d83c492413fe71548efa4a288d9",
    19: "bf38407c55b6033c1677230228ecb100a11294aa74a7b92e5edfdc4abadcfef9",
    20: "7af7296f2e892866669d4e4f9c0d4178987e6ec6e7d0751ec238d1bbe2da9c55",
    21: "772c722acb2eac01769b53fa5037a3d62745e53102398bf9b2202df605cadda4",
    22: "b19f5533ec24077a2395a085fe53af75dd350ef03798c4ff40ba9ebecb2ee0ad",
    23: "2d8f1df5c9ee83e59eb2d709eb153b0570f12e726690f586154b01b0a88bb540",
    24: "6ab02d922b5c937ecfe2a479be87a5d3e5ef950dc48da09d31f37b47d899ca9c",
    25: "c5ea59aca7789dd507ac31c4a82bbd4c172f9e3544f8e040442c20d1dfa9e16d",
    26: "b056fae9f358111b6c9e2494bdba645f206be581959b8d3763e97d62a65dd961",
    27: "5be3823a57c82b632cead6eb09f438c6010a244dc0975f2a3e466f45d2c06840",
    28: "c0b0e2a2b7aad46919d1afc980f7d5e39101fb07948ce65d9cac802d8b47682e",
    29: "1e8839a97178914171defd6a97158f06fcac1fc3f0d45f2acdff9c49ab3fced9",
}

register_dataset(
    "isbi2012-membrane",
    files=[
        RemoteFile(f"{_ISBI_BASE}/image/{i}.png", f"images/{i}.png", f"sha256:{_ISBI_IMAGE_SHA256[i]}")
        for i in range(30)
    ]
    + [
        RemoteFile(f"{_ISBI_BASE}/label/{i}.png", f"masks/{i}.png", f"sha256:{_ISBI_MASK_SHA256[i]}")
        for i in range(30)
    ],
    description=(
        "ISBI 2012 EM segmentation challenge, training slices: 30 serial-section TEM images (512x512, 8-bit) of "
        "the Drosophila first instar larva ventral nerve cord with membrane masks (255 = cell, 0 = membrane). "
        "The data of the U-Net paper (Ronneberger et al., 2015), as published in github.com/zhixuhao/unet."
    ),
    citation=(
        "Arganda-Carreras et al., Crowdsourcing the creation of image segmentation algorithms for connectomics, "
        "Frontiers in Neuroanatomy 2015."
    ),
    licence="Free for non-commercial generation and testing of image-segmentation software (organisers' terms).",
    help="images/0.png ... images/29.png and masks/0.png ... masks/29.png",
)
