"""Read a BLAST nucleotide database (format version 4: .nin/.nsq/.nhr) without BLAST.

The embedded RNA default comes from Debian's ``ncbi-data`` package, which ships 16S rRNA
collections only as BLAST databases. This module decodes them into plain FASTA (standard
library only, so ``scripts/fetch_data.sh`` can run it with any Python 3)::

    python datamodules/blastdb.py DB_PREFIX OUT.fa [--rna]

Format (NCBI ``readdb``/``SeqDB``, version 4; integers big-endian unless noted):

``.nin``: version (4), database type (0 = nucleotide), title (int32 length + bytes), date
(int32 length + bytes), number of sequences N, total residues (int64, *little*-endian),
longest sequence, then three tables of N + 1 offsets: headers (into ``.nhr``), sequences
(into ``.nsq``) and ambiguities (into ``.nsq``).

``.nsq``: a NUL byte, then per sequence the bases packed 4 per byte (A=0, C=1, G=2, T=3,
most significant bits first); the low 2 bits of the last byte give how many bases that byte
holds (0-3; the full bytes before it hold 4 each). Sequence i occupies
``[seq[i], amb[i])``; its ambiguity table occupies ``[amb[i], seq[i + 1])``: an int32
count (high bit set = "new" format, where the count is in 32-bit words and each entry takes
two words) followed by the entries, each a 4-bit NCBI4na residue code (IUPAC, e.g. N, R,
Y), a run length and a start position. The packed bases under an ambiguity are arbitrary, so
the table is applied on top of them: decoded sequences carry their real IUPAC letters, and
the sequence DataModule drops every window that holds one (they are not A/C/G/U).

``.nhr``: an ASN.1 (BER) ``Blast-def-line-set`` per sequence; only the title string of the
first definition line is read, for the FASTA header.
"""

from __future__ import annotations

import argparse
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from svdd_lightning.atomic import atomic_path

NUCLEOTIDE_BASES = "ACGT"
# NCBI4na code -> IUPAC letter (bit 1 = A, 2 = C, 4 = G, 8 = T).
NCBI4NA = "-ACMGRSVTWYHKDBN"
SUPPORTED_VERSION = 4


class BlastDBError(ValueError):
    """A BLAST database file is missing, of an unsupported kind, or inconsistent."""


@dataclass(frozen=True)
class BlastIndex:
    version: int
    title: str
    date: str
    num_sequences: int
    total_length: int
    max_length: int
    header_offsets: tuple[int, ...]
    sequence_offsets: tuple[int, ...]
    ambiguity_offsets: tuple[int, ...]


def _files(prefix: str | Path) -> dict[str, Path]:
    prefix = Path(prefix)
    base = prefix.with_suffix("") if prefix.suffix in (".nin", ".nsq", ".nhr") else prefix
    paths = {ext: Path(f"{base}.{ext}") for ext in ("nin", "nsq", "nhr")}
    missing = [str(p) for ext, p in paths.items() if ext != "nhr" and not p.is_file()]
    if missing:
        raise BlastDBError(
            f"BLAST database {base}: missing {', '.join(missing)}. Give the database prefix "
            f"(the path without .nin/.nsq), e.g. usr/share/ncbi/data/Combined16SrRNA_2-12-2008."
        )
    return paths


def read_index(path: str | Path) -> BlastIndex:
    """Parse a ``.nin`` index (version 4 nucleotide database)."""
    data = Path(path).read_bytes()
    pos = 0

    def take(fmt: str) -> tuple:
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(data):
            raise BlastDBError(f"BLAST index {path} is truncated at byte {pos}.")
        out = struct.unpack_from(fmt, data, pos)
        pos += size
        return out

    def take_string() -> str:
        nonlocal pos
        (n,) = take(">i")
        if n < 0 or pos + n > len(data):
            raise BlastDBError(f"BLAST index {path} has a bad string length {n} at byte {pos - 4}.")
        text = data[pos : pos + n].split(b"\0", 1)[0].decode("latin-1")
        pos += n
        return text

    version, kind = take(">ii")
    if version != SUPPORTED_VERSION:
        raise BlastDBError(
            f"BLAST index {path} has format version {version}; only version {SUPPORTED_VERSION} "
            f"(the one Debian's ncbi-data ships) is supported."
        )
    if kind != 0:
        raise BlastDBError(f"BLAST index {path} is a protein database (type {kind}); a nucleotide one is needed.")
    title = take_string()
    date = take_string()
    (n,) = take(">i")
    (total,) = take("<q")  # the one little-endian field of the format
    (max_len,) = take(">i")
    if n < 0 or pos + 3 * 4 * (n + 1) > len(data):
        raise BlastDBError(f"BLAST index {path} claims {n} sequences but is too short for their offsets.")
    tables = [take(f">{n + 1}I") for _ in range(3)]
    return BlastIndex(version, title, date, n, total, max_len, *tables)


def unpack_bases(packed: bytes) -> str:
    """2-bit packed bases (4 per byte, most significant first; the low 2 bits of the last
    byte count its bases) -> 'ACGT' string."""
    if not packed:
        raise BlastDBError("empty packed sequence (even a zero-length one keeps its last byte)")
    full, last = packed[:-1], packed[-1]
    out = [_BYTE_TO_BASES[b] for b in full]
    out.append(_BYTE_TO_BASES[last][: last & 3])
    return "".join(out)


_BYTE_TO_BASES = [
    "".join(NUCLEOTIDE_BASES[(b >> shift) & 3] for shift in (6, 4, 2, 0)) for b in range(256)
]


def apply_ambiguities(seq: str, table: bytes, *, where: str = "sequence") -> str:
    """Write the IUPAC runs of an ambiguity table over a decoded sequence."""
    if not table:
        return seq
    if len(table) % 4:
        raise BlastDBError(f"{where}: ambiguity table of {len(table)} bytes is not whole 32-bit words")
    words = struct.unpack(f">{len(table) // 4}I", table)
    count, entries = words[0], words[1:]
    new_format = bool(count & 0x80000000)
    count &= 0x7FFFFFFF
    if count != len(entries):
        raise BlastDBError(f"{where}: ambiguity table says {count} words but holds {len(entries)}")
    letters = list(seq)
    step = 2 if new_format else 1
    for i in range(0, count, step):
        word = entries[i]
        code = word >> 28
        if new_format:
            run = ((word >> 16) & 0xFFF) + 1
            start = entries[i + 1]
        else:
            run = ((word >> 24) & 0xF) + 1
            start = word & 0xFFFFFF
        if start + run > len(letters):
            raise BlastDBError(f"{where}: ambiguity run {start}+{run} past the end ({len(letters)})")
        letters[start : start + run] = NCBI4NA[code] * run
    return "".join(letters)


def _header_title(blob: bytes) -> str:
    """The first VisibleString (tag 0x1A) of a BER Blast-def-line-set: the title."""
    i = blob.find(b"\x1a")
    while i >= 0 and i + 1 < len(blob):
        n = blob[i + 1]
        start = i + 2
        if n & 0x80:  # long form length
            k = n & 0x7F
            n = int.from_bytes(blob[start : start + k], "big")
            start += k
        if 0 < n and start + n <= len(blob):
            return blob[start : start + n].decode("latin-1").replace("\n", " ").strip()
        i = blob.find(b"\x1a", i + 1)
    return ""


def read_blastdb(prefix: str | Path) -> tuple[BlastIndex, list[tuple[str, str]]]:
    """Decode every sequence of a nucleotide BLAST database: (index, [(title, sequence)])
    with sequences over ACGT plus IUPAC ambiguity letters."""
    paths = _files(prefix)
    index = read_index(paths["nin"])
    nsq = paths["nsq"].read_bytes()
    nhr = paths["nhr"].read_bytes() if paths["nhr"].is_file() else b""
    seq_off, amb_off, hdr_off = index.sequence_offsets, index.ambiguity_offsets, index.header_offsets
    if seq_off[-1] > len(nsq):
        raise BlastDBError(f"{paths['nsq']} is truncated: the index points to byte {seq_off[-1]} of {len(nsq)}.")
    records = []
    total = 0
    for i in range(index.num_sequences):
        if not seq_off[i] <= amb_off[i] <= seq_off[i + 1]:
            raise BlastDBError(f"{paths['nin']}: inconsistent offsets for sequence {i}")
        where = f"{paths['nsq']} sequence {i}"
        seq = unpack_bases(nsq[seq_off[i] : amb_off[i]])
        seq = apply_ambiguities(seq, nsq[amb_off[i] : seq_off[i + 1]], where=where)
        title = _header_title(nhr[hdr_off[i] : hdr_off[i + 1]]) if nhr else ""
        records.append((title or f"seq{i}", seq))
        total += len(seq)
    if total != index.total_length:
        raise BlastDBError(
            f"{paths['nsq']}: decoded {total} bases but the index says {index.total_length}; the "
            f"database is corrupt or in a format this reader does not know."
        )
    return index, records


def write_fasta(records: list[tuple[str, str]], path: str | Path, *, rna: bool = False, width: int = 80) -> None:
    """Write records as FASTA (T -> U when ``rna``), atomically via a .partial file."""
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        for i, (title, seq) in enumerate(records):
            if rna:
                seq = seq.replace("T", "U")
            fh.write(f">{i} {title}\n")
            for start in range(0, len(seq), width):
                fh.write(seq[start : start + width] + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Convert a BLAST nucleotide database (v4) to FASTA.")
    parser.add_argument("db", help="database prefix, e.g. .../Combined16SrRNA_2-12-2008")
    parser.add_argument("out", help="FASTA file to write")
    parser.add_argument("--rna", action="store_true", help="write U instead of T")
    args = parser.parse_args(argv)
    try:
        index, records = read_blastdb(args.db)
    except (BlastDBError, OSError) as exc:
        print(f"blastdb: {exc}", file=sys.stderr)
        return 1
    write_fasta(records, args.out, rna=args.rna)
    ambiguous = sum(1 for _, s in records if set(s) - set("ACGT"))
    lengths = sorted(len(s) for _, s in records)
    print(
        f"blastdb: {args.db} ({index.title!r}, {index.date}): {len(records)} sequences, "
        f"{index.total_length} bases, median length {lengths[len(lengths) // 2]}, "
        f"{ambiguous} with ambiguity codes -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
