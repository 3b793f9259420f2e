/* torch-grouped-conv's IREE executable plugin: row-major f32 GEMMs through
 * the sgemm of the MKL that PyTorch's libtorch_cpu carries and exports.
 *
 * runners/blas.py builds it (cc, linked to libtorch_cpu) and loads it into
 * the IREE runtime's local drivers (`--executable_plugin`). Modules compiled
 * for this process call `tgc_sgemm` from their GEMM dispatches (blas.py
 * rewrites each static f32 linalg.matmul / batch_matmul into one).
 *
 * The structures below follow IREE's executable plugin ABI, version 0.1
 * (runtime/src/iree/hal/local/executable_plugin.h in IREE), declared here
 * with the fields this plugin uses; their layout is that ABI's. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
  uint32_t version;
  const char* name;
  const char* description;
  uint32_t features;
  int32_t sanitizer;
  uint64_t reserved[8];
} plugin_header_t;
typedef struct { const char* data; size_t size; } string_view_t;
typedef struct { string_view_t key, value; } string_pair_t;
typedef struct { void* self; void* ctl; } host_allocator_t;
typedef struct { host_allocator_t host_allocator; } environment_t;
typedef struct {
  size_t count;
  const char* const* symbol_names;
  void** out_fn_ptrs;
  void** out_fn_contexts;
} resolve_params_t;
typedef void* plugin_status_t; /* 0: ok; else a status code */
typedef struct {
  const plugin_header_t* header;
  plugin_status_t (*load)(const environment_t*, size_t, const string_pair_t*, void**);
  void (*unload)(void*);
  plugin_status_t (*resolve)(void*, const resolve_params_t*, uint32_t*);
} plugin_v0_t;
#define PLUGIN_VERSION_0_1 1u
#define STATUS_NOT_FOUND 5u
#define RESOLUTION_MISSING_OPTIONAL 1u

/* MKL's Fortran interface (column-major; arguments by reference). */
extern void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                   const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                   const float* beta, float* c, const int* ldc);
/* This thread's MKL thread count (by reference); returns the previous one, 0 = the global count. */
extern int mkl_set_num_threads_local(const int* count);

/* The arguments of one call, in the order of blas.py's `tgc_sgemm`
 * declaration: three bindings (base pointer and element offset), the GEMM's
 * sizes, its split into workgroups, and this workgroup's index. */
typedef struct {
  const float* a;
  size_t a_offset;
  const float* b;
  size_t b_offset;
  float* c;
  size_t c_offset;
  size_t batch, m, n, k;
  size_t m_chunk, n_chunk, m_chunks, n_chunks;
  size_t workgroup;
} gemm_params_t;

static size_t min_size(size_t x, size_t y) { return x < y ? x : y; }

/* C[b, m0:m1, n0:n1] = A[b, m0:m1, :] @ B[b, :, n0:n1], each row-major
 * (A [batch, m, k], B [batch, k, n], C [batch, m, n]); the workgroup's batch
 * item and row / column chunk come from its index. Seen column-major, that is
 * C^T = B^T A^T, which sgemm_ computes without transposing anything. MKL runs
 * on the calling IREE worker alone: the workgroups are the parallelism. */
static int tgc_sgemm(void* params_ptr, void* context, void* reserved) {
  (void)context;
  (void)reserved;
  const gemm_params_t* p = (const gemm_params_t*)params_ptr;
  size_t per_item = p->m_chunks * p->n_chunks;
  size_t item = p->workgroup / per_item, chunk = p->workgroup % per_item;
  size_t m0 = (chunk / p->n_chunks) * p->m_chunk, n0 = (chunk % p->n_chunks) * p->n_chunk;
  if (item >= p->batch || m0 >= p->m || n0 >= p->n) return 0;
  int rows = (int)min_size(p->m_chunk, p->m - m0), cols = (int)min_size(p->n_chunk, p->n - n0);
  int k = (int)p->k, lda = (int)p->k, ldb = (int)p->n, ldc = (int)p->n;
  const float one = 1.0f, zero = 0.0f;
  const float* a = p->a + p->a_offset + item * p->m * p->k + m0 * p->k;
  const float* b = p->b + p->b_offset + item * p->k * p->n + n0;
  float* c = p->c + p->c_offset + item * p->m * p->n + m0 * p->n + n0;
  static const int single = 1;
  int previous = mkl_set_num_threads_local(&single);
  sgemm_("N", "N", &cols, &rows, &k, &one, b, &ldb, a, &lda, &zero, c, &ldc);
  mkl_set_num_threads_local(&previous); /* the thread may be the caller's (local-sync): leave it as it was */
  return 0;
}

static plugin_status_t plugin_load(const environment_t* environment, size_t param_count,
                                   const string_pair_t* params, void** out_self) {
  (void)environment;
  (void)param_count;
  (void)params;
  *out_self = NULL; /* stateless */
  return 0;
}

static void plugin_unload(void* self) { (void)self; }

static plugin_status_t plugin_resolve(void* self, const resolve_params_t* params, uint32_t* out_resolution) {
  (void)self;
  *out_resolution = 0;
  int missing = 0;
  for (size_t i = 0; i < params->count; ++i) {
    if (params->out_fn_ptrs[i]) continue; /* resolved by another provider */
    const char* name = params->symbol_names[i];
    int optional = name[0] == '?';
    if (optional) ++name;
    if (strcmp(name, "tgc_sgemm") == 0) {
      params->out_fn_ptrs[i] = (void*)tgc_sgemm;
      params->out_fn_contexts[i] = NULL;
    } else if (optional) {
      *out_resolution |= RESOLUTION_MISSING_OPTIONAL;
    } else {
      missing = 1;
    }
  }
  return missing ? (plugin_status_t)(uintptr_t)STATUS_NOT_FOUND : 0;
}

__attribute__((visibility("default"))) const plugin_header_t** iree_hal_executable_plugin_query(
    uint32_t max_version, void* reserved) {
  (void)reserved;
  static const plugin_header_t header = {
      PLUGIN_VERSION_0_1, "torch_grouped_conv_blas", "f32 GEMMs through MKL (torch-grouped-conv)", 0, 0, {0}};
  static const plugin_v0_t plugin = {&header, plugin_load, plugin_unload, plugin_resolve};
  return max_version >= PLUGIN_VERSION_0_1 ? (const plugin_header_t**)&plugin : NULL;
}
