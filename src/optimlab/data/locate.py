"""Where dataset files are looked for, and how they are fetched.

Search order: an explicit ``data_dir``, then ``$OPTIMLAB_DATA``, then the user cache
(``$XDG_CACHE_HOME/optimlab`` or ``~/.cache/optimlab``), then system locations such as
``/usr/share/datasets/fashion-mnist/`` (Debian's ``dataset-fashion-mnist`` package).
Inside each base folder both ``<base>/<dataset>/`` and ``<base>/`` itself are tried, so
``data_dir`` may name either the parent folder or the folder holding the files.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from optimlab.errors import OptimlabError
from optimlab.io import file_mode

ENV_VAR = "OPTIMLAB_DATA"

Opener = Callable[..., IO[bytes]]


@dataclass(frozen=True)
class FileSpec:
    """One published file of a dataset.

    ``md5`` is the digest of the file as published. ``content_md5``, for gzipped files,
    is the digest of the decompressed content: a copy that was recompressed (Debian's
    package ships such copies) or stored uncompressed is accepted when its content
    matches. ``alternatives`` are other names under which the file may be present (the
    uncompressed name, an extracted folder).
    """

    name: str
    md5: str
    content_md5: str | None = None
    alternatives: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.alternatives)


@dataclass(frozen=True)
class Location:
    """A folder holding every file of a dataset, and the path found for each file."""

    folder: Path
    paths: dict[str, Path]
    origin: str  # "data_dir", "$OPTIMLAB_DATA", "cache" or "system"


def cache_dir() -> Path:
    """The per-user cache folder: ``$XDG_CACHE_HOME/optimlab`` or ``~/.cache/optimlab``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "optimlab"


def search_dirs(
    data_dir: str | os.PathLike[str] | None = None, system: Sequence[str] = ()
) -> list[tuple[str, Path]]:
    """Base folders in search order, each labelled with where it came from."""
    dirs: list[tuple[str, Path]] = []
    if data_dir is not None:
        dirs.append(("data_dir", Path(data_dir).expanduser()))
    env = os.environ.get(ENV_VAR)
    if env:
        dirs.append((f"${ENV_VAR}", Path(env).expanduser()))
    dirs.append(("cache", cache_dir()))
    dirs.extend(("system", Path(s)) for s in system)
    return dirs


def find_in(folder: Path, files: Sequence[FileSpec]) -> dict[str, Path] | None:
    """The path of every file in ``folder`` (under any of its names), or None if one lacks."""
    found: dict[str, Path] = {}
    for spec in files:
        for name in spec.names:
            if (folder / name).exists():
                found[spec.name] = folder / name
                break
        else:
            return None
    return found


def locate(
    dataset: str,
    files: Sequence[FileSpec],
    data_dir: str | os.PathLike[str] | None = None,
    system: Sequence[str] = (),
    subfolders: Sequence[str] = (),
) -> Location | None:
    """The first folder, in search order, that holds all ``files``; None when none does."""
    for origin, base in search_dirs(data_dir, system):
        for folder in candidate_folders(base, dataset, subfolders):
            found = find_in(folder, files)
            if found is not None:
                return Location(folder, found, origin)
    return None


def candidate_folders(base: Path, dataset: str, subfolders: Sequence[str] = ()) -> list[Path]:
    """``<base>/<dataset>``, ``<base>/<alias>`` for each of ``subfolders``, then ``<base>``."""
    names = dict.fromkeys([dataset, *subfolders])
    return [base / n for n in names] + [base]


def download_target(dataset: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where a download goes: ``data_dir``, else ``$OPTIMLAB_DATA``, else the cache."""
    if data_dir is not None:
        return Path(data_dir).expanduser() / dataset
    env = os.environ.get(ENV_VAR)
    return (Path(env).expanduser() if env else cache_dir()) / dataset


def download(
    url: str,
    dest: str | os.PathLike[str],
    md5: str | None = None,
    *,
    opener: Opener | None = None,
    timeout: float = 60.0,
) -> Path:
    """Fetch ``url`` to ``dest``; the file appears only once complete and verified.

    Bytes go to a temporary file in the destination folder, hashed as they arrive; the
    temporary file replaces ``dest`` (``os.replace``, atomic) only when the MD5 matches,
    so an interrupted or corrupt download never leaves a file that looks good.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    open_url = opener or urllib.request.urlopen
    request: Any = url
    if url.startswith(("http://", "https://")):
        request = urllib.request.Request(url, headers={"User-Agent": "optimlab"})
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out, open_url(request, timeout=timeout) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if md5 is not None and digest.hexdigest() != md5:
            raise OptimlabError(
                f"{url}: downloaded data has MD5 {digest.hexdigest()}, expected {md5}; "
                "nothing was saved"
            )
        os.chmod(tmp, file_mode())  # mkstemp's 0o600 would hide the dataset from others
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def fetch(
    files: Sequence[FileSpec],
    mirrors: Sequence[str],
    folder: Path,
    *,
    opener: Opener | None = None,
) -> dict[str, Path]:
    """Download each file missing from ``folder``, trying ``mirrors`` (base URLs) in order."""
    paths: dict[str, Path] = {}
    for spec in files:
        target = folder / spec.name
        if target.exists():
            paths[spec.name] = target
            continue
        failures = []
        for base in mirrors:
            url = base.rstrip("/") + "/" + spec.name
            try:
                paths[spec.name] = download(url, target, spec.md5, opener=opener)
                break
            except (OSError, OptimlabError) as err:  # URLError is an OSError
                failures.append(f"{url}: {err}")
        else:
            raise OptimlabError(
                f"could not download {spec.name}; tried:\n  " + "\n  ".join(failures)
            )
    return paths
