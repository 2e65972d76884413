/* mspt — tensors, the per-step context (arena + autograd tape), parameters.
 *
 * Tensors are float32, row-major, contiguous, with up to MSPT_MAX_DIMS dims.
 * Activations live in the context's arena: mspt_ctx_reset() drops them all at
 * once and keeps the memory, so a steady-state step makes no heap allocation.
 * Parameters are persistent (owned by an mspt_params set) and carry a
 * gradient buffer of their own that accumulates until mspt_params_zero_grad().
 *
 * Autograd: every op called while grad mode is on and any input requires a
 * gradient pushes a backward closure on the context's tape; mspt_backward()
 * runs the tape in reverse.  Gradients of activations are allocated lazily
 * (zeroed) from the arena the first time something accumulates into them.
 *
 * Op errors (shape mismatch, bad argument) are sticky: the op records a
 * message in the context and returns NULL; every op given a NULL input
 * returns NULL at once, so a forward pass can be written without checks and
 * tested once at the end with mspt_ctx_error(). */
#ifndef MSPT_TENSOR_H
#define MSPT_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MSPT_MAX_DIMS 5

/* Parameter flags, used by optimizers to build parameter groups. */
#define MSPT_PARAM_HEAD 0x1     /* belongs to the reconstruction head */
#define MSPT_PARAM_NO_DECAY 0x2 /* bias, norm weight, embedding: no decay */

typedef struct mspt_tensor mspt_tensor;
struct mspt_tensor {
    float *data;
    float *grad;         /* same shape as data; NULL until first needed */
    int ndim;
    int shape[MSPT_MAX_DIMS];
    size_t numel;
    int requires_grad;
    mspt_tensor *base;   /* a view (reshape) shares data and grad of base */
    const char *name;    /* parameters: dotted state_dict name */
    int flags;           /* parameters: MSPT_PARAM_* */
};

typedef struct mspt_ctx mspt_ctx;
typedef struct mspt_rng mspt_rng;
typedef struct mspt_params mspt_params;

/* ---- context --------------------------------------------------------- */

mspt_ctx *mspt_ctx_new(void);
void mspt_ctx_free(mspt_ctx *ctx);
/* Drop the tape, all activations and the sticky error; keep the memory. */
void mspt_ctx_reset(mspt_ctx *ctx);
/* Grad mode (default on). Off: ops record nothing (validation, inference). */
void mspt_ctx_set_grad(mspt_ctx *ctx, int enabled);
int mspt_ctx_grad_enabled(const mspt_ctx *ctx);
/* Training mode (default on) switches dropout; independent of grad mode. */
void mspt_ctx_set_training(mspt_ctx *ctx, int training);
int mspt_ctx_training(const mspt_ctx *ctx);
/* Random stream for stochastic ops (dropout); owned by the caller. */
void mspt_ctx_set_rng(mspt_ctx *ctx, mspt_rng *rng);
mspt_rng *mspt_ctx_rng(mspt_ctx *ctx);
/* First error recorded by an op since the last reset, or NULL. */
const char *mspt_ctx_error(const mspt_ctx *ctx);
/* Record an error (printf-style); returns NULL for `return mspt_fail(...)`. */
mspt_tensor *mspt_fail(mspt_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Bytes of arena memory in use / reserved (for tests and reports). */
size_t mspt_ctx_arena_used(const mspt_ctx *ctx);
size_t mspt_ctx_arena_reserved(const mspt_ctx *ctx);

/* ---- tensors ---------------------------------------------------------- */

/* New arena tensor, contents undefined / zeroed. */
mspt_tensor *mspt_tensor_new(mspt_ctx *ctx, int ndim, const int *shape);
mspt_tensor *mspt_tensor_zeros(mspt_ctx *ctx, int ndim, const int *shape);
/* Arena tensor header over caller-owned memory (inputs); no grad. */
mspt_tensor *mspt_tensor_wrap(mspt_ctx *ctx, float *data, int ndim,
                              const int *shape);
/* Shape helpers. */
size_t mspt_shape_numel(int ndim, const int *shape);
int mspt_tensor_same_shape(const mspt_tensor *a, const mspt_tensor *b);
/* "(2,3,4)" into buf; returns buf. */
const char *mspt_shape_str(const mspt_tensor *t, char *buf, size_t size);

/* Scratch memory from the arena, 64-byte aligned, freed by reset. */
void *mspt_ctx_alloc(mspt_ctx *ctx, size_t bytes);

/* ---- autograd (for op authors) --------------------------------------- */

typedef void (*mspt_backward_fn)(mspt_ctx *ctx, void *saved);

/* Does an op whose inputs are these need to record itself? */
int mspt_needs_grad(const mspt_ctx *ctx, const mspt_tensor *t);
/* The output tensor of an op: arena, requires_grad set from `needs`. */
mspt_tensor *mspt_op_output(mspt_ctx *ctx, int ndim, const int *shape,
                            int needs);
/* Push a backward closure; `saved` is arena memory (mspt_ctx_alloc). */
void mspt_tape_push(mspt_ctx *ctx, mspt_backward_fn fn, void *saved);
/* Gradient buffer of t, allocated zeroed on first use; NULL if t needs none. */
float *mspt_grad(mspt_ctx *ctx, mspt_tensor *t);
/* Run the tape in reverse from a scalar (numel 1) output, seeded with 1.
 * Gradients accumulate into parameters' grad buffers. */
int mspt_backward(mspt_ctx *ctx, mspt_tensor *loss);
/* Vector-Jacobian product: run the tape seeded with grad_out (out->numel
 * floats) on a non-scalar output.  grad_out NULL: out's gradient is
 * already in place (written through mspt_grad). */
int mspt_backward_with(mspt_ctx *ctx, mspt_tensor *out, const float *grad_out);
size_t mspt_tape_length(const mspt_ctx *ctx);

/* ---- random numbers and initializers --------------------------------- */

/* One seeded generator drives every random choice of a run. */
mspt_rng *mspt_rng_new(uint64_t seed);
void mspt_rng_free(mspt_rng *rng);
void mspt_rng_seed(mspt_rng *rng, uint64_t seed);
uint64_t mspt_rng_u64(mspt_rng *rng);
double mspt_rng_uniform(mspt_rng *rng);       /* [0, 1) */
double mspt_rng_normal(mspt_rng *rng);        /* N(0, 1) */
/* Serialisable state (for checkpoints). */
#define MSPT_RNG_STATE_WORDS 4
void mspt_rng_get_state(const mspt_rng *rng, uint64_t s[MSPT_RNG_STATE_WORDS]);
void mspt_rng_set_state(mspt_rng *rng, const uint64_t s[MSPT_RNG_STATE_WORDS]);

/* PyTorch-default initializers.  fan_in of a weight (out, in, k...) is
 * in·Πk; nn.Linear/nn.Conv default is kaiming_uniform(a = √5), i.e.
 * U(±1/√fan_in), and their bias U(±1/√fan_in). */
void mspt_init_uniform(mspt_tensor *t, mspt_rng *rng, float lo, float hi);
void mspt_init_normal(mspt_tensor *t, mspt_rng *rng, float mean, float std);
/* Normal(mean, std) truncated to [lo, hi] (timm's trunc_normal_). */
void mspt_init_trunc_normal(mspt_tensor *t, mspt_rng *rng, float mean,
                            float std, float lo, float hi);
void mspt_init_const(mspt_tensor *t, float value);
void mspt_init_kaiming_uniform(mspt_tensor *t, mspt_rng *rng, float a);
void mspt_init_xavier_uniform(mspt_tensor *t, mspt_rng *rng, float gain);
/* Bias of a layer whose weight has this fan_in: U(±1/√fan_in). */
void mspt_init_fan_in_bias(mspt_tensor *t, mspt_rng *rng, int fan_in);
int mspt_tensor_fan_in(const mspt_tensor *weight);
int mspt_tensor_fan_out(const mspt_tensor *weight);

/* ---- parameters ------------------------------------------------------- */

mspt_params *mspt_params_new(void);
void mspt_params_free(mspt_params *ps);
/* New persistent parameter, zero-filled, with a zeroed grad buffer.
 * NULL if the name is taken or memory is short. */
mspt_tensor *mspt_param_new(mspt_params *ps, const char *name, int ndim,
                            const int *shape, int flags);
/* The same with a printf-style name ("blocks.%d.attn.qkv.weight"). */
mspt_tensor *mspt_param_newf(mspt_params *ps, int flags, int ndim,
                             const int *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
size_t mspt_params_count(const mspt_params *ps);       /* tensors */
size_t mspt_params_numel(const mspt_params *ps);       /* scalars */
mspt_tensor *mspt_params_at(const mspt_params *ps, size_t i);
mspt_tensor *mspt_params_find(const mspt_params *ps, const char *name);
void mspt_params_zero_grad(mspt_params *ps);

/* ---- threads and BLAS ------------------------------------------------- */

/* Prepare the calling thread and the OpenMP pool for compute (flush
 * denormals to zero); mspt_ctx_new() calls it, threads of one's own that
 * run ops call it once. */
void mspt_engine_thread_init(void);
/* Threads for ops and GEMMs (default: available cores; at most
 * mspt_max_threads(), 4 per online CPU: more only thrash, and OpenMP fails
 * outright on tens of thousands). */
void mspt_set_threads(int n);
int mspt_get_threads(void);
int mspt_max_threads(void);
/* Name of the BLIS kernel set in use ("skx", "haswell", "generic", ...). */
const char *mspt_blas_kernel(void);
/* How GEMMs are threaded: "serial BLIS, cut by mspt" (BLIS's serial
 * flavour, mspt's own split) or "BLIS OpenMP" / "BLIS pthreads". */
const char *mspt_blas_threading(void);

/* Elements below which a loop runs on one thread: forking costs more. */
#define MSPT_PAR_MIN 32768
/* Runs fn(arg, t, nt) once for each t in [0, nt): on the engine's threads,
 * nt = mspt_get_threads(), when work >= MSPT_PAR_MIN; otherwise nt = 1 and
 * fn runs inline on the caller, as it does when called from inside a
 * parallel region.  No OpenMP region is ever opened for one thread (libgomp
 * allocates a thread team for each such region; a training step must make
 * no heap allocation), and nt depends only on `work` and the thread count,
 * so blocks cut from (t, nt) give bit-identical results run to run. */
void mspt_parallel(size_t work, void (*fn)(void *arg, int t, int nt),
                   void *arg);
/* [*i0, *i1): block t of [0, n) cut in nt contiguous blocks. */
static inline void mspt_block(size_t n, int t, int nt, size_t *i0, size_t *i1)
{
    *i0 = n * (size_t)t / (size_t)nt;
    *i1 = n * (size_t)(t + 1) / (size_t)nt;
}

#ifdef __cplusplus
}
#endif
#endif
