"""Reference numbers for tests/test_edf.c, from MNE 1.3 (Debian python3-mne).

    /usr/bin/python3 scripts/gen_fixtures_edf.py

Writes, under tests/fixtures/:
  edf_synth.edf      a small EDF+C recording made here: 4 EEG signals at
                     500 Hz (one in mV), one at 125 Hz, an annotation signal
  edf_synth_mne.npy  MNE on edf_synth.edf: pick FP1 FP2 C3 O1, filter(1, 40),
                     notch_filter(50), resample(256), in uV: (4, 3072)
  edf_synth_lp.npy   MNE on edf_synth.edf: pick O1, filter(None, 30),
                     resample(200), in uV: (1, 2400)
  edf_synth_raw.npy  MNE's raw read of edf_synth.edf (read_raw_edf(...)
                     .get_data() of FP1 FP2 C3 O1, x 1e6: uV), the first 2048
                     samples: (4, 2048)
  edf_synth_native.npy  MNE on edf_synth.edf: pick FP1 FP2 C3 O1, filter(1,
                     40), notch_filter(50), no resampling (500 Hz is the
                     target rate, as make_datasets/process_raw_eeg.py does),
                     uV, every second sample of the first 4096: (4, 2048)
  edf_tuh_mne.npy    MNE on ../shared/data/tuh/00009578_s002_t001.edf with the
                     TUH recipe of DESIGN.md (pick the 21 channels ordered,
                     filter(0.1, 75), notch_filter(60), resample(256), uV, TCP
                     bipolar): the first 3 windows of 1280 samples, every
                     second sample: (22, 1920) float32
  edf_tuh_native.npy the same recipe at 250 Hz, the file's own rate, so
                     without resample() (process_raw_eeg.py resamples only
                     when the rate differs): (22, 1920) as above
  edf_tuh_raw.npy    MNE's raw read of the 21 channels (get_data() x 1e6,
                     uV), every second of the first 1280 samples: (21, 640)
  edf_fir.txt        MNE's FIR taps (tests/fixture.h format): notch 60 Hz at
                     250 Hz, band-pass 1-40 Hz at 500 Hz, and every 8th tap of
                     the 0.1-75 Hz band-pass at 250 Hz
The .npy files hold float32 little-endian arrays (numpy.save).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures import FIXTURE_DIR, write_fixture  # noqa: E402

import mne  # noqa: E402
from mne.filter import create_filter  # noqa: E402

mne.set_log_level("ERROR")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TUH = os.path.join(ROOT, "..", "shared", "data", "tuh",
                   "00009578_s002_t001.edf")
TUH_CHANNELS = ("FP1 FP2 F3 F4 C3 C4 P3 P4 O1 O2 F7 F8 T3 T4 T5 T6 A1 A2 FZ "
                "CZ PZ").split()
TCP = ("FP1-F7 F7-T3 T3-T5 T5-O1 FP2-F8 F8-T4 T4-T6 T6-O2 A1-T3 T3-C3 C3-CZ "
       "CZ-C4 C4-T4 T4-A2 FP1-F3 F3-C3 C3-P3 P3-O1 FP2-F4 F4-C4 C4-P4 "
       "P4-O2").split()


def field(value, width):
    s = str(value).encode("latin-1")
    assert len(s) <= width, (value, width)
    return s + b" " * (width - len(s))


def write_edf(path, signals, records, duration, annotations=True):
    """signals: list of dicts label, unit, pmin, pmax, dmin, dmax, n
    (samples per record), digital (int array of records * n).  EDF+C with
    a time-keeping annotation signal of 15 samples when annotations."""
    sigs = list(signals)
    if annotations:
        sigs.append(dict(label="EDF Annotations", unit="", pmin=-1, pmax=1,
                         dmin=-32768, dmax=32767, n=15, digital=None))
    ns = len(sigs)
    h = b"".join([field("0", 8), field("X X X X", 80),
                  field("Startdate 01-JAN-2000 X mspt-fixture X", 80),
                  field("01.01.00", 8), field("00.00.00", 8),
                  field(256 * (ns + 1), 8),
                  field("EDF+C" if annotations else "", 44),
                  field(records, 8), field(duration, 8), field(ns, 4)])
    for key, w in (("label", 16), ("transducer", 80), ("unit", 8),
                   ("pmin", 8), ("pmax", 8), ("dmin", 8), ("dmax", 8),
                   ("prefilter", 80), ("n", 8), ("reserved", 32)):
        h += b"".join(field(s.get(key, ""), w) for s in sigs)
    assert len(h) == 256 * (ns + 1)
    body = bytearray()
    for r in range(records):
        for s in sigs:
            if s["digital"] is None:
                tal = ("+%d\x14\x14\x00" % (r * duration)).encode()
                body += tal + b"\x00" * (2 * s["n"] - len(tal))
            else:
                d = s["digital"][r * s["n"]:(r + 1) * s["n"]]
                body += np.asarray(d, "<i2").tobytes()
    with open(path, "wb") as f:
        f.write(h + bytes(body))


def synth_signals():
    rng = np.random.default_rng(20240501)
    records, fs = 12, 500
    t = np.arange(records * fs) / fs
    sigs = []
    for k, (name, unit) in enumerate((("EEG FP1-LE", "uV"),
                                      ("EEG FP2-LE", "uV"),
                                      ("EEG C3-LE", "mV"),
                                      ("EEG O1-LE", "uV"))):
        # 1/f-ish background, alpha, mains, a DC offset and a slow drift
        bg = np.cumsum(rng.standard_normal(t.size)) * 0.8
        bg -= np.linspace(bg[0], bg[-1], t.size)
        x = (bg + 25 * np.sin(2 * np.pi * (9.5 + k) * t + k)
             + 12 * np.sin(2 * np.pi * 50 * t) + 300 + 40 * t
             + 5 * rng.standard_normal(t.size))
        if unit == "mV":
            x = x / 1000
            pmin, pmax = -3.2, 3.2
        else:
            pmin, pmax = -3200.0, 3200.0
        dmin, dmax = -32768, 32767
        d = np.round((x - pmin) / (pmax - pmin) * (dmax - dmin) + dmin)
        sigs.append(dict(label=name, unit=unit, pmin=pmin, pmax=pmax,
                         dmin=dmin, dmax=dmax, n=fs,
                         digital=np.clip(d, dmin, dmax).astype(int)))
    slow = np.round(1000 * np.sin(2 * np.pi * 0.5 * np.arange(records * 125)
                                  / 125)).astype(int)
    sigs.append(dict(label="EEG X1-LE", unit="uV", pmin=-3200, pmax=3200,
                     dmin=-32768, dmax=32767, n=125, digital=slow))
    return sigs, records


def save_npy(name, a):
    path = os.path.join(FIXTURE_DIR, name)
    np.save(path, np.ascontiguousarray(a, dtype="<f4"))
    return path


def mne_synth(path):
    raw = mne.io.read_raw_edf(path, preload=True)
    a = raw.copy().pick_channels(["EEG FP1-LE", "EEG FP2-LE", "EEG C3-LE",
                                  "EEG O1-LE"], ordered=True)
    a.filter(1, 40)
    a.notch_filter(50)
    a.resample(256)
    b = raw.copy().pick_channels(["EEG O1-LE"], ordered=True)
    b.filter(None, 30)
    b.resample(200)
    return a.get_data() * 1e6, b.get_data() * 1e6


def mne_synth_native(path):
    raw = mne.io.read_raw_edf(path, preload=True)
    raw.pick_channels(["EEG FP1-LE", "EEG FP2-LE", "EEG C3-LE", "EEG O1-LE"],
                      ordered=True)
    plain = raw.get_data() * 1e6
    raw.filter(1, 40)
    raw.notch_filter(50)
    return plain, raw.get_data() * 1e6


def mne_tuh_raw():
    raw = mne.io.read_raw_edf(TUH, preload=True)
    raw.pick_channels(["EEG %s-REF" % c for c in TUH_CHANNELS], ordered=True)
    return raw.get_data() * 1e6


def mne_tuh(resample=True):
    raw = mne.io.read_raw_edf(TUH, preload=True)
    raw.pick_channels(["EEG %s-REF" % c for c in TUH_CHANNELS], ordered=True)
    raw.filter(0.1, 75)
    raw.notch_filter(60)
    if resample:
        raw.resample(256)
    d = raw.get_data() * 1e6
    ix = {c: i for i, c in enumerate(TUH_CHANNELS)}
    return np.stack([d[ix[p.split("-")[0]]] - d[ix[p.split("-")[1]]]
                     for p in TCP])


def main():
    os.makedirs(FIXTURE_DIR, exist_ok=True)
    synth = os.path.join(FIXTURE_DIR, "edf_synth.edf")
    sigs, records = synth_signals()
    write_edf(synth, sigs, records, 1)
    a, b = mne_synth(synth)
    assert a.shape == (4, 3072) and b.shape == (1, 2400), (a.shape, b.shape)
    save_npy("edf_synth_mne.npy", a)
    save_npy("edf_synth_lp.npy", b)
    plain, native = mne_synth_native(synth)
    assert plain.shape == (4, 6000) and native.shape == (4, 6000)
    save_npy("edf_synth_raw.npy", plain[:, :2048])
    save_npy("edf_synth_native.npy", native[:, :4096:2])

    if os.path.exists(TUH):
        tcp = mne_tuh()
        assert tcp.shape == (22, 4352), tcp.shape
        save_npy("edf_tuh_mne.npy", tcp[:, :3 * 1280:2])
        tcp = mne_tuh(resample=False)
        assert tcp.shape == (22, 4250), tcp.shape
        save_npy("edf_tuh_native.npy", tcp[:, :3 * 1280:2])
        raw = mne_tuh_raw()
        assert raw.shape == (21, 4250), raw.shape
        save_npy("edf_tuh_raw.npy", raw[:, :1280:2])
    else:
        print("skipped the TUH fixtures:", TUH, "absent")

    notch = create_filter(None, 250., 60. + 0.15 + 0.5, 60. - 0.15 - 0.5,
                          l_trans_bandwidth=0.5, h_trans_bandwidth=0.5)
    bp500 = create_filter(None, 500., 1., 40.)
    bp250 = create_filter(None, 250., 0.1, 75.)
    write_fixture("edf_fir.txt", [
        ("notch60_fs250", notch), ("bp1_40_fs500", bp500),
        ("bp01_75_fs250_len", [float(len(bp250))]),
        ("bp01_75_fs250_every8", bp250[::8])])
    print("fixtures written to", os.path.normpath(FIXTURE_DIR))


if __name__ == "__main__":
    main()
