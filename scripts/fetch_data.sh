#!/usr/bin/env bash
# Fetches the embedded real data sets into the git-ignored data/ folder.
# Idempotent: a file that is already there is not fetched again.
# Source: Debian's r-bioc-biostrings package ships dm3_upstream2000.fa.gz,
# 26,454 Drosophila 2 kb upstream (promoter) sequences from UCSC dm3.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
data="$top/data"
mkdir -p "$data/dna"

dna_target="$data/dna/dm3_upstream2000.fa.gz"
if [ -s "$dna_target" ]; then
  echo "data: $dna_target already present"
else
  if ! command -v apt-get >/dev/null 2>&1; then
    cat >&2 <<MSG
data: cannot fetch the DNA default data: apt-get is not available on this machine.
  The embedded DNA set comes from Debian's package r-bioc-biostrings
  (usr/lib/R/site-library/Biostrings/extdata/dm3_upstream2000.fa.gz).
  Either run this on Debian/Ubuntu, copy that file to $dna_target by hand,
  or point decoding/training at your own data with data.path=YOUR.fasta
MSG
    exit 1
  fi
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  echo "data: downloading r-bioc-biostrings from the Debian registry"
  if ! (cd "$tmp" && apt-get download r-bioc-biostrings >/dev/null 2>&1); then
    echo "data: package lists look stale; running apt-get update (needs root)" >&2
    if ! apt-get update >/dev/null 2>&1 || ! (cd "$tmp" && apt-get download r-bioc-biostrings >/dev/null); then
      echo "data: apt-get could not download r-bioc-biostrings. Run 'sudo apt-get update' and retry 'make setup'," >&2
      echo "      or place dm3_upstream2000.fa.gz at $dna_target yourself." >&2
      exit 1
    fi
  fi
  dpkg-deb -x "$tmp"/r-bioc-biostrings_*.deb "$tmp/x"
  src="$(find "$tmp/x" -name dm3_upstream2000.fa.gz | head -n1)"
  [ -n "$src" ] || { echo "data: dm3_upstream2000.fa.gz not found inside the package" >&2; exit 1; }
  cp "$src" "$dna_target.partial" && mv "$dna_target.partial" "$dna_target"
  echo "data: wrote $dna_target"
fi

# RNA: Debian's ncbi-data package (public domain) ships 16S rRNA collections only as BLAST
# databases; datamodules/blastdb.py (standard library only) decodes
# Combined16SrRNA_2-12-2008 (5,681 full-length 16S rRNAs) into plain FASTA with U for T.
mkdir -p "$data/rna"
rna_target="$data/rna/16S_rRNA.fa"
rna_db="usr/share/ncbi/data/Combined16SrRNA_2-12-2008"
if [ -s "$rna_target" ]; then
  echo "data: $rna_target already present"
else
  if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
    cat >&2 <<MSG
data: cannot fetch the RNA default data: apt-get/dpkg-deb are not available on this machine.
  The embedded RNA set comes from Debian's package ncbi-data
  ($rna_db.{nin,nsq,nhr}, a BLAST database).
  Either run this on Debian/Ubuntu, or get those three files elsewhere and convert them with
    python3 datamodules/blastdb.py PATH/Combined16SrRNA_2-12-2008 $rna_target --rna
  or point decoding/training at your own data with domain=rna data.path=YOUR.fasta
MSG
    exit 1
  fi
  tmp_rna="$(mktemp -d)"
  trap 'rm -rf "${tmp:-}" "$tmp_rna"' EXIT
  echo "data: downloading ncbi-data from the Debian registry"
  if ! (cd "$tmp_rna" && apt-get download ncbi-data >/dev/null 2>&1); then
    echo "data: package lists look stale; running apt-get update (needs root)" >&2
    if ! apt-get update >/dev/null 2>&1 || ! (cd "$tmp_rna" && apt-get download ncbi-data >/dev/null); then
      echo "data: apt-get could not download ncbi-data. Run 'sudo apt-get update' and retry 'make setup'," >&2
      echo "      or convert $rna_db from that package yourself (see datamodules/blastdb.py)." >&2
      exit 1
    fi
  fi
  dpkg-deb -x "$tmp_rna"/ncbi-data_*.deb "$tmp_rna/x"
  [ -f "$tmp_rna/x/$rna_db.nsq" ] || { echo "data: $rna_db.nsq not found inside ncbi-data" >&2; exit 1; }
  py="$top/.venv/bin/python"
  [ -x "$py" ] || py="$(command -v python3 || true)"
  [ -n "$py" ] || { echo "data: python3 is needed to decode the BLAST database" >&2; exit 1; }
  "$py" "$top/datamodules/blastdb.py" "$tmp_rna/x/$rna_db" "$rna_target" --rna
  echo "data: wrote $rna_target"
fi
