/* Classification metrics for fine-tuning (core-internal), with the
 * definitions of the torchmetrics calls in BioFoundation's finetune_task.py
 * (and _LUNA, _EMG): an accumulator that keeps every score (AUROC and
 * average precision need them all) and a running confusion matrix.
 *
 *   mspt_clf_metrics m;
 *   mspt_clf_init(&m, 4, MSPT_CLF_MULTICLASS, &err);
 *   for each batch: mspt_clf_add(&m, logits, 4, labels, B, MSPT_CLF_LOGITS, &err);
 *   mspt_clf_result r; mspt_clf_compute(&m, &r);   then mspt_clf_reset(&m)
 *   mspt_clf_free(&m);
 *
 * Storage grows by doubling inside mspt_clf_add (so a run of equal batches
 * allocates O(log n) times, never in mspt_clf_compute).
 *
 * Inputs.  scores: B × ncol row-major, raw logits or probabilities;
 * labels: B class indices (binary, multiclass) or B × K 0/1 (multilabel).
 *   binary      ncol 2: predicted label argmax (first maximum on ties, as
 *               torch.argmax), ranking score column 1 — with logits that is
 *               sigmoid(logit 1) alone, exactly what BioFoundation's
 *               _handle_binary passes to BinaryAUROC (logits[:, 1]); pass
 *               softmax probabilities to rank by p(class 1) instead.
 *               ncol 1: one score for class 1 (sigmoid if logits), label
 *               score > 0.5 (torchmetrics' threshold, strict).
 *   multiclass  ncol K: label argmax; ranking scores softmax(logits) or the
 *               given probabilities.  (torchmetrics softmaxes a batch only
 *               when some value lies outside [0, 1]; we always softmax
 *               logits so that batching cannot change the result.)
 *   multilabel  ncol K: label k is score_k > 0.5 after sigmoid of logits.
 *
 * Definitions (K classes; per class c: tp, fp, fn from the confusion
 * matrix; 0/0 is 0 as torchmetrics' _safe_divide; "macro" below means the
 * mean over classes with tp + fp + fn > 0, torchmetrics'
 * _adjust_weights_safe_divide: a class absent from both the labels and the
 * predictions does not count; a class predicted but never true counts with
 * recall 0.  scikit-learn's precision/recall/f1_score(average="macro") with
 * default labels give the same; its balanced_accuracy_score does not (it
 * drops classes absent from y_true even when predicted)).
 *   accuracy           correct / n (BinaryAccuracy; the EMG task's micro_acc)
 *   balanced_accuracy  macro recall = MulticlassRecall(average="macro") =
 *                      MulticlassAccuracy(average="macro")
 *   recall             = balanced_accuracy in every mode but multilabel:
 *                      BioFoundation builds Recall with task='multiclass'
 *                      even for 2 classes
 *   precision, f1      binary: of class 1 only, tp/(tp+fp) and
 *                      2tp/(2tp+fp+fn) (BinaryPrecision/F1Score ignore
 *                      average="macro"); multiclass: macro
 *   kappa              Cohen's kappa from the confusion matrix, NaN when the
 *                      expected disagreement is 0 (one class only in both
 *                      labels and predictions), as torchmetrics and sklearn
 *   auroc              binary: area under the ROC curve of the ranking score
 *                      (trapezoids over distinct scores: ties form one
 *                      step, as sklearn.roc_auc_score); multiclass: mean over
 *                      all K classes of the one-vs-rest AUROC.  A class with
 *                      no positive or no negative sample scores 0
 *                      (torchmetrics zeroes the missing rate; sklearn raises)
 *   aupr               average precision, sum over distinct scores of
 *                      (R_i − R_{i−1}) P_i (sklearn's step-wise AP, not the
 *                      trapezoid); multiclass: mean over all K classes; a
 *                      class with no positive sample scores 0 (sklearn and
 *                      torchmetrics >= 1.0; 0.x gave NaN and skipped it)
 * BioFoundation logs MulticlassAccuracy(average="macro") as "accuracy" for
 * K >= 3: that is balanced_accuracy here; for K = 2 it is accuracy.
 * Multilabel (torchmetrics Multilabel*, average="macro", no class dropped):
 * accuracy and precision/recall/f1 are means over the K labels of the
 * per-label binary values, balanced_accuracy = recall, auroc/aupr means of
 * per-label binary values, kappa NaN (torchmetrics has no multilabel kappa).
 * With no sample every metric is NaN. */
#ifndef MSPT_TASK_CLF_METRICS_H
#define MSPT_TASK_CLF_METRICS_H

#include <stddef.h>

#include <mspt/error.h>

typedef enum mspt_clf_mode {
    MSPT_CLF_BINARY,     /* K = 2, BioFoundation's task="binary" */
    MSPT_CLF_MULTICLASS, /* K >= 2 */
    MSPT_CLF_MULTILABEL  /* K >= 1 independent 0/1 labels */
} mspt_clf_mode;

typedef enum mspt_clf_input { MSPT_CLF_LOGITS, MSPT_CLF_PROBS } mspt_clf_input;

#define MSPT_CLF_MAX_CLASSES 4096

typedef struct mspt_clf_result {
    double accuracy, balanced_accuracy, precision, recall, f1, kappa, auroc, aupr;
    long long n; /* samples */
} mspt_clf_result;

typedef struct mspt_clf_pair {
    float s;
    int y;
} mspt_clf_pair;

typedef struct mspt_clf_metrics {
    mspt_clf_mode mode;
    int K;         /* classes (binary: 2) or labels */
    int cols;      /* ranking scores per sample: 1 (binary) or K */
    int tcols;     /* targets per sample: K (multilabel) or 1 */
    /* binary/multiclass: K × K counts, row = true class, column = predicted;
     * multilabel: K × 4 counts (tn, fp, fn, tp) per label. */
    long long *confusion;
    float *scores;       /* n × cols ranking scores (probabilities) */
    int *targets;        /* n × tcols */
    mspt_clf_pair *pairs; /* sort scratch, cap entries */
    size_t n, cap;
} mspt_clf_metrics;

int mspt_clf_init(mspt_clf_metrics *m, int K, mspt_clf_mode mode, mspt_error *err);
/* Adds a batch (nothing is added when it fails: a label out of range or a
 * non-finite score names the sample; ncol must match the mode). */
int mspt_clf_add(mspt_clf_metrics *m, const float *scores, int ncol,
                 const int *labels, size_t B, mspt_clf_input in, mspt_error *err);
/* Adds everything src holds (same K and mode): per-rank accumulators
 * gathered into one give the metrics of the whole set. */
int mspt_clf_merge(mspt_clf_metrics *dst, const mspt_clf_metrics *src,
                   mspt_error *err);
void mspt_clf_compute(mspt_clf_metrics *m, mspt_clf_result *r);
void mspt_clf_reset(mspt_clf_metrics *m);
void mspt_clf_free(mspt_clf_metrics *m);

/* One-vs-rest AUROC and AP of score column c (binary: c must be 0, the
 * class-1 score), with the edge cases above. */
double mspt_clf_auroc(mspt_clf_metrics *m, int c);
double mspt_clf_aupr(mspt_clf_metrics *m, int c);
/* ROC curve of score column c: points (fpr, tpr) from (0, 0), one per
 * distinct score, to (1, 1); fpr and tpr hold at least n + 1 values.
 * Returns the number of points (rates are 0 where undefined). */
size_t mspt_clf_roc(mspt_clf_metrics *m, int c, double *fpr, double *tpr);

#endif
