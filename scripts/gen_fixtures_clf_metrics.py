"""Fixtures for core/task/clf_metrics.c: classification metrics from
scikit-learn, combined with the rules of the torchmetrics calls in
BioFoundation's finetune_task.py (torchmetrics itself is not installed).

    /usr/bin/python3 scripts/gen_fixtures_clf_metrics.py

Where the two libraries agree we call sklearn directly:
  accuracy           accuracy_score (= BinaryAccuracy, micro accuracy)
  balanced_accuracy  recall_score(average="macro", zero_division=0) with the
                     default labels (those in y_true or y_pred) = torchmetrics
                     MulticlassRecall/Accuracy(average="macro"), which drops
                     classes with tp + fp + fn == 0.  NOT sklearn's
                     balanced_accuracy_score, which also drops classes that are
                     predicted but never true (the "absent" case shows both).
  precision, f1      binary: precision/f1_score(pos_label=1, zero_division=0);
                     multiclass: average="macro" as above
  kappa              cohen_kappa_score (NaN when one class fills everything,
                     as torchmetrics)
  auroc, aupr        per column: roc_auc_score / average_precision_score (the
                     step-wise AP, which is torchmetrics' too); the macro is the
                     mean over all K columns.  Where they differ we apply
                     torchmetrics' rule: a column without positives or without
                     negatives has AUROC 0 (sklearn raises); a column without
                     positives has AP 0 (sklearn gives 0 as well).
Ranking scores are what clf_metrics stores: float32 softmax (multiclass
logits), float32 sigmoid of logit 1 (binary logits, BioFoundation's
_handle_binary), sigmoid (multilabel logits), or the probabilities as given.
"""
import math
import warnings

import numpy as np
import torch
from sklearn import metrics as skm

from fixtures import write_fixture

warnings.filterwarnings("ignore")
BINARY, MULTICLASS, MULTILABEL = 0, 1, 2
LOGITS, PROBS = 0, 1


def ranking_scores(mode, x, inp):
    t = torch.as_tensor(x, dtype=torch.float32)
    if inp == PROBS:
        s = t
    elif mode == MULTICLASS:
        s = torch.softmax(t.double(), dim=1).float()
    else:
        s = torch.sigmoid(t.double()).float()
    if mode == BINARY:
        s = s[:, -1:]  # column 1 of two, or the single column
    return s.double().numpy()


def predictions(mode, x, inp):
    if mode == MULTICLASS or (mode == BINARY and x.shape[1] == 2):
        return np.argmax(x, axis=1)  # first maximum, as torch.argmax
    s = ranking_scores(mode, x, inp)
    return ((s[:, 0] if mode == BINARY else s) > 0.5).astype(int)


def col_auroc(y, s):
    if y.min() == y.max():
        return 0.0
    return skm.roc_auc_score(y, s)


def col_ap(y, s):
    if y.max() == 0:
        return 0.0
    return skm.average_precision_score(y, s)


def reference(mode, K, x, y, inp):
    s = ranking_scores(mode, x, inp)
    p = predictions(mode, x, inp)
    if mode == MULTILABEL:
        acc = float(np.mean([skm.accuracy_score(y[:, k], p[:, k]) for k in range(K)]))
        rec = skm.recall_score(y, p, average="macro", zero_division=0)
        prec = skm.precision_score(y, p, average="macro", zero_division=0)
        f1 = skm.f1_score(y, p, average="macro", zero_division=0)
        kappa = math.nan
        ycols = [y[:, k] for k in range(K)]
    else:
        acc = skm.accuracy_score(y, p)
        rec = skm.recall_score(y, p, average="macro", zero_division=0)
        if mode == BINARY:
            prec = skm.precision_score(y, p, zero_division=0)
            f1 = skm.f1_score(y, p, zero_division=0)
        else:
            prec = skm.precision_score(y, p, average="macro", zero_division=0)
            f1 = skm.f1_score(y, p, average="macro", zero_division=0)
        kappa = skm.cohen_kappa_score(y, p)
        ycols = [(y == 1).astype(int)] if mode == BINARY else \
            [(y == k).astype(int) for k in range(K)]
    aucs = [col_auroc(yc, s[:, c]) for c, yc in enumerate(ycols)]
    aps = [col_ap(yc, s[:, c]) for c, yc in enumerate(ycols)]
    return [acc, rec, prec, rec, f1, kappa, np.mean(aucs), np.mean(aps)], aucs, aps


def case(name, mode, K, x, y, inp, batches):
    want, aucs, aps = reference(mode, K, x, y, inp)
    x = np.asarray(x, dtype=np.float32)
    return [
        (name + "_meta", [mode, K, x.shape[1], inp]),
        (name + "_x", x),
        (name + "_y", np.asarray(y, dtype=np.float32)),
        (name + "_batches", batches),  # batch sizes, summing to n
        # accuracy, balanced_accuracy, precision, recall, f1, kappa, auroc, aupr
        (name + "_want", want),
        (name + "_auroc_cols", aucs),  # per score column (binary: one)
        (name + "_aupr_cols", aps),
    ]


def main():
    rng = np.random.default_rng(16)
    out = []

    # Binary, two logit columns, logits rounded to 0.5 so scores tie.
    n = 40
    x = np.round(rng.normal(size=(n, 2)) * 2) / 2
    y = rng.integers(0, 2, n)
    out += case("bin_logits", BINARY, 2, x, y, LOGITS, [7, 13, 1, 19])

    # Binary, one probability column with ties and p exactly 0.5 (label 0).
    p1 = rng.choice([0.1, 0.3, 0.5, 0.5, 0.7, 0.9], n)
    y = (rng.random(n) < p1).astype(int)
    out += case("bin_prob1", BINARY, 2, p1[:, None], y, PROBS, [40])

    # Binary where nothing is predicted positive: precision 0/0 = 0.
    x = np.stack([np.full(12, 2.0), rng.normal(size=12) - 4], 1)
    y = np.array([0, 1] * 6)
    out += case("bin_nopos", BINARY, 2, x, y, LOGITS, [5, 7])

    # Four classes, quantised logits (ties within a column), every class present.
    n = 60
    x = np.round(rng.normal(size=(n, 4)) * 2) / 2
    y = rng.integers(0, 4, n)
    x[np.arange(n), y] += 0.75  # a better-than-chance classifier
    x = np.round(x * 4) / 4
    out += case("mc4", MULTICLASS, 4, x, y, LOGITS, [16, 16, 16, 12])

    # Four classes given as probabilities (softmax done here).
    pr = torch.softmax(torch.as_tensor(x, dtype=torch.float32), 1).numpy()
    out += case("mc4_probs", MULTICLASS, 4, pr, y, PROBS, [60])

    # Four classes, class 3 absent from labels and predictions (dropped from
    # the macro P/R/F1), class 2 predicted but never true (counts with 0).
    n = 36
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 4))
    x[np.arange(n), y] += 0.8
    x[:, 3] = -9
    x[::5, 2] = 5  # some predicted class 2
    x = np.round(x * 2) / 2
    out += case("mc4_absent", MULTICLASS, 4, x, y, LOGITS, [10, 10, 16])

    # All one class, perfectly predicted: kappa NaN, AUROC 0 by rule.
    x = np.tile([[3.0, 0.0, 0.0]], (8, 1))
    y = np.zeros(8, dtype=int)
    out += case("mc3_one", MULTICLASS, 3, x, y, LOGITS, [3, 5])

    # Multilabel, 3 labels, label 2 never positive.
    n = 30
    Y = (rng.random((n, 3)) < 0.4).astype(int)
    Y[:, 2] = 0
    x = np.round((rng.normal(size=(n, 3)) + Y) * 2) / 2
    out += case("ml3", MULTILABEL, 3, x, Y, LOGITS, [11, 19])

    path = write_fixture("clf_metrics.txt", out)
    print("wrote", path)
    # The one place sklearn's own balanced accuracy disagrees:
    m = [t for nm, t in out if nm == "mc4_absent_x"][0]
    yy = [t for nm, t in out if nm == "mc4_absent_y"][0].astype(int)
    print("mc4_absent: torchmetrics macro recall %.6f, sklearn balanced_accuracy_score %.6f"
          % (skm.recall_score(yy, np.argmax(m, 1), average="macro", zero_division=0),
             skm.balanced_accuracy_score(yy, np.argmax(m, 1))))


if __name__ == "__main__":
    main()
