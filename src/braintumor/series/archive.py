"""A zip of DICOM files, read in memory and refused when it could hurt.

Nothing is extracted to disk; members are read into memory one by one. Before any
member is read the central directory is checked as a whole: the expanded size the
members declare must fit MAX_SERIES_BYTES (zipfile never returns more bytes than a
member declares and checks its CRC, so a lying member fails instead of growing), and
the member count is bounded. Nested archives, absolute or ``..`` paths, links and
encrypted members are refused outright: a series has no use for them, and a client that
sends them is either confused or probing. Other non-DICOM members (a README, a DICOMDIR,
macOS ``__MACOSX`` metadata) are skipped and counted.
"""

from __future__ import annotations

import io
import stat
import zipfile

from braintumor.errors import FileTooLargeError, InvalidSeriesError

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
#: Members per allowed slice: room for DICOMDIRs, readers' notes and folders.
MEMBERS_PER_SLICE = 4
#: Archives inside the zip, recognised by name when not by content.
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".gz", ".7z", ".rar", ".bz2", ".xz")


def is_zip(data: bytes) -> bool:
    return data[:4] in ZIP_MAGIC


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB"


def _unsafe_path(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return (name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":")
            or ".." in parts)


def zip_members(data: bytes, *, max_bytes: int, max_slices: int) -> tuple[list[bytes], int]:
    """(the members' bytes that may be DICOM, count of members skipped) or a 4xx error."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise InvalidSeriesError("The zip archive is corrupt or truncated") from None
    files = [i for i in infos if not i.is_dir()]
    limit = MEMBERS_PER_SLICE * max_slices
    if len(files) > limit:
        raise FileTooLargeError(
            f"The zip holds {len(files)} files; the limit is {limit} "
            f"({MEMBERS_PER_SLICE} per slice of MAX_SERIES_SLICES)")
    declared = sum(i.file_size for i in files)
    if declared > max_bytes:
        raise FileTooLargeError(
            f"The zip expands to {_mb(declared)}, over the {_mb(max_bytes)} limit "
            "(MAX_SERIES_BYTES)")
    for number, info in enumerate(files, start=1):
        if _unsafe_path(info.filename):
            raise InvalidSeriesError(
                f"Zip member {number} has an absolute or '..' path; such archives are "
                "refused")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise InvalidSeriesError(f"Zip member {number} is a symbolic link; links are "
                                     "refused")
        if info.flag_bits & 0x1:
            raise InvalidSeriesError(f"Zip member {number} is encrypted; send the files "
                                     "unencrypted")
        if info.filename.lower().endswith(_ARCHIVE_SUFFIXES[:1]):
            raise InvalidSeriesError(f"Zip member {number} is itself a zip; nested "
                                     "archives are refused")
    members: list[bytes] = []
    skipped = 0
    for number, info in enumerate(files, start=1):
        name = info.filename.replace("\\", "/")
        base = name.rsplit("/", 1)[-1]
        if name.startswith("__MACOSX/") or base.startswith("."):
            skipped += 1
            continue
        try:
            with archive.open(info) as member:
                content = member.read(info.file_size + 1)
        except NotImplementedError:
            raise InvalidSeriesError(
                f"Zip member {number} uses a compression method this server cannot "
                "read (use deflate or store)") from None
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError):
            raise InvalidSeriesError(
                f"Zip member {number} is corrupt or truncated") from None
        if len(content) != info.file_size:
            raise InvalidSeriesError(f"Zip member {number} is not the size it declares")
        if is_zip(content) or base.lower().endswith(_ARCHIVE_SUFFIXES[1:]):
            raise InvalidSeriesError(f"Zip member {number} is itself an archive; nested "
                                     "archives are refused")
        members.append(content)
    return members, skipped
