#!/usr/bin/python3
"""bench_prep_corpus.py — BioFoundation's own per-file recipe over a corpus,
the way make_datasets/process_raw_eeg.py runs it: its process_and_dump_file
(imported from the reference tree, dataset "tuab", no label) over every
file with a multiprocessing.Pool of --processes workers and imap_unordered.
Each recording: read_raw_edf(preload), pick the 21 channels, filter(0.1,
75), notch(60), resample to 256 Hz unless already there, TCP bipolar in uV,
one pickle per 5 s window.

    /usr/bin/python3 bench/bench_prep_corpus.py CORPUS_DIR OUT_DIR
        [--processes 2] [--biofoundation DIR]

Prints the wall time, recordings/s and hours of EEG per second (the hours
from the EDF headers).  process_raw_eeg.py imports pandas at the top for
its TUSL/TUAR label files, which "tuab" never reads; when pandas is not
installed a stub stands in so that the module imports unchanged.
"""
import argparse
import os
import sys
import time
import types
from multiprocessing import Pool


def edf_hours(path):
    """Hours of EEG in a recording, from its header and size (0 if broken)."""
    try:
        return _edf_hours(path)
    except (ValueError, ZeroDivisionError, OSError):
        return 0.0


def _edf_hours(path):
    with open(path, "rb") as f:
        h = f.read(256)
        size = os.fstat(f.fileno()).st_size
    ns = int(h[252:256])
    f_hdr = 256 * (ns + 1)
    with open(path, "rb") as f:
        f.seek(256 + ns * (16 + 80 + 8 * 5 + 80))
        n = [int(f.read(8)) for _ in range(ns)]
    dur = float(h[244:252])
    return (size - f_hdr) // (2 * sum(n)) * dur / 3600


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("out")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--biofoundation",
                    default="/work/shared/ref/biofoundation")
    a = ap.parse_args()
    a.corpus, a.out = os.path.abspath(a.corpus), os.path.abspath(a.out)
    try:
        import pandas  # noqa: F401
    except ImportError:
        sys.modules["pandas"] = types.ModuleType("pandas")
    sys.path.insert(0, os.path.join(a.biofoundation, "make_datasets"))
    import process_raw_eeg as bf

    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(a.corpus)
                   for f in fs if f.lower().endswith(".edf"))
    hours = sum(edf_hours(f) for f in files)
    os.makedirs(a.out, exist_ok=True)
    params = [(f, a.out, None, "tuab") for f in files]
    os.chdir(a.out)  # its error log, tuab-process-errors.txt, lands here
    t0 = time.perf_counter()
    with Pool(processes=a.processes) as pool:
        list(pool.imap_unordered(bf.process_and_dump_file, params))
    t = time.perf_counter() - t0
    errors = 0
    if os.path.exists("tuab-process-errors.txt"):
        with open("tuab-process-errors.txt") as f:
            errors = sum(1 for _ in f)
    print("bf_seconds %.3f" % t)
    print("bf_files %d" % len(files))
    print("bf_errors %d" % errors)
    print("bf_hours %.3f" % hours)
    print("bf_files_per_s %.3f" % (len(files) / t))
    print("bf_hours_per_s %.4f" % (hours / t))


if __name__ == "__main__":
    main()
