/* Data parallelism over MPI: the few collectives the trainer needs.
 *
 * mspt_dist_init() joins an MPI job only when the process was started by
 * mpirun/mpiexec or srun (it sees their environment); a plain `mspt run` is
 * rank 0 of 1 and never touches MPI.  Built without MPI (configure
 * --without-mpi) every function is the one-rank no-op.
 *
 * Every collective takes the caller's status (0 or an mspt_status) and
 * returns the status all ranks agree on: if any rank failed, every rank
 * returns the lowest failing rank's status, with its message rewritten as
 * "rank R: message".  So all ranks stop together, and the error is printed
 * once, by rank 0 (mspt_dist_error_prefix). */
#ifndef MSPT_DIST_H
#define MSPT_DIST_H

#include <stddef.h>

#include <mspt/error.h>
#include <mspt/tensor.h>

/* Join the job, if launched as one (MPI_Init_thread, FUNNELED: only the
 * main thread calls MPI). */
int mspt_dist_init(int *argc, char ***argv, mspt_error *err);
/* Leave the job with status rc: MPI_Finalize, or after an error of this
 * rank alone (not agreed: the others may be waiting for it) MPI_Abort,
 * which ends every rank. */
void mspt_dist_finalize(int rc);
int mspt_dist_rank(void);
int mspt_dist_size(void);

/* Agree on a status (see above). */
int mspt_dist_agree(int rc, mspt_error *err);
/* all[i] = rank i's value (all has size() entries). */
int mspt_dist_gather(int rc, int value, int *all, mspt_error *err);
/* v[0..n) summed over the ranks in place, n <= 8. */
int mspt_dist_sum(int rc, double *v, int n, mspt_error *err);
/* bytes of rank 0's buf copied to every rank's. */
void mspt_dist_bcast(void *buf, size_t bytes);
/* Print "mspt: rank R: message" on stderr and end the whole job (for
 * states the ranks cannot agree on; never returns). */
void mspt_dist_abort(const char *fmt, ...) __attribute__((format(printf, 1, 2),
                                                          noreturn));
/* What to print before an error message on this rank: NULL when another
 * rank prints it (an agreed error: rank 0 prints it, naming the failing
 * rank); "rank R: " for an error of this rank alone; "" in a one-rank run. */
const char *mspt_dist_error_prefix(void);

/* Gradient summation, after the backward: parameters are packed, last
 * registered first (the order backward finishes them), into buckets of
 * about bucket_bytes in one buffer allocated here, once, and each bucket
 * is reduced by MPI_Allreduce and unpacked in turn.  Not overlapped with
 * the backward: the tape tells no one when a parameter's gradient is
 * complete.  (Open MPI's MPI_Iallreduce, which overlap would need, took
 * 2.5 times as long as MPI_Allreduce on 31 MB here.) */
typedef struct mspt_dist_grads mspt_dist_grads;
mspt_dist_grads *mspt_dist_grads_new(const mspt_params *ps, size_t bucket_bytes);
void mspt_dist_grads_free(mspt_dist_grads *g);
/* Replace every gradient by its sum over the ranks.  Each rank scaled its
 * loss by its share of the global batch's windows, so the sum is the
 * gradient of the global batch's mean: the ranks' average, weighted by
 * their windows.  A failed rank (rc) still takes part. */
int mspt_dist_grads_sum(mspt_dist_grads *g, int rc, mspt_error *err);
/* Buckets; the wall time mspt_dist_grads_sum spent reducing over *calls,
 * and apart from it, *waited: blocked until the slowest rank came. */
int mspt_dist_grads_buckets(const mspt_dist_grads *g);
double mspt_dist_grads_seconds(const mspt_dist_grads *g, double *waited,
                               long long *calls);

#endif
