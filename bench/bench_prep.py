#!/usr/bin/python3
"""bench_prep.py — bench/bench_prep.c's preprocessing in MNE 1.3 (Debian's
python3-mne): read_raw_edf(preload), pick the 21 TUH channels (ordered),
filter(0.1, 75), notch_filter(60), resample(256), volts to uV, the 22 TCP
bipolar derivations, windows of 1280 samples.

    /usr/bin/python3 bench/bench_prep.py FILE.edf [--repeats N] [--out X.npy]
                                              [--n-jobs J]

Prints the median wall time of N runs and the throughput in seconds of EEG
per second; --out saves the windows (N, 22, 1280) for a parity check;
--n-jobs is MNE's own parallelism for the filters and the resampling
(joblib; MNE's default is 1).
"""
import argparse
import time

import numpy as np

import mne

CHANNELS = ("FP1 FP2 F3 F4 C3 C4 P3 P4 O1 O2 F7 F8 T3 T4 T5 T6 A1 A2 FZ CZ "
            "PZ").split()
TCP = ("FP1-F7 F7-T3 T3-T5 T5-O1 FP2-F8 F8-T4 T4-T6 T6-O2 A1-T3 T3-C3 C3-CZ "
       "CZ-C4 C4-T4 T4-A2 FP1-F3 F3-C3 C3-P3 P3-O1 FP2-F4 F4-C4 C4-P4 "
       "P4-O2").split()


def prep(path, n_jobs=1):
    raw = mne.io.read_raw_edf(path, preload=True)
    seconds = raw.n_times / raw.info["sfreq"]
    raw.pick_channels(["EEG %s-REF" % c for c in CHANNELS], ordered=True)
    raw.filter(0.1, 75, n_jobs=n_jobs)
    raw.notch_filter(60, n_jobs=n_jobs)
    raw.resample(256, n_jobs=n_jobs)
    d = raw.get_data() * 1e6
    ix = {c: i for i, c in enumerate(CHANNELS)}
    bp = np.stack([d[ix[p.split("-")[0]]] - d[ix[p.split("-")[1]]]
                   for p in TCP])
    n = bp.shape[1] // 1280
    w = bp[:, :n * 1280].reshape(22, n, 1280).transpose(1, 0, 2)
    return np.ascontiguousarray(w, dtype=np.float32), seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out")
    ap.add_argument("--n-jobs", type=int, default=1)
    a = ap.parse_args()
    mne.set_log_level("ERROR")
    times = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        w, seconds = prep(a.file, a.n_jobs)
        times.append(time.perf_counter() - t0)
    med = sorted(times)[len(times) // 2]
    if a.out:
        np.save(a.out, w)
    print("mne_seconds %.4f" % med)
    print("mne_eeg_seconds %.1f" % seconds)
    print("mne_throughput %.1f" % (seconds / med))
    print("mne_windows %d" % w.shape[0])


if __name__ == "__main__":
    main()
