// Fused softmax(q k^T * scale) v for CPU inference, registered as
// torch.ops.vmae2_mm.cpu_fused_attention (wrapper: vmae2_mm/models/backbones/
// cpu_fused_attention.py).
//
// fp32 (AVX-512 register-blocked products, one block of 48 queries at a time). Why not torch's
// SDPA: torch 2.13's CPU flash-attention kernel reaches about 65% of the fp32 matmul peak at ViT
// sizes (1568 tokens, head dim 64): its q k^T and attn v products go through cpublas with K = 64
// and re-pack their operands for every block. Here:
// * each head's keys and values are copied once to contiguous rows (in the qkv tensor every row
//   sits in another 4 KB page, where the hardware prefetchers stop);
// * scores are computed transposed, s[j][r] for key j and query r, 8 keys x 48 queries per
//   register tile, against the block's queries transposed to [D][48];
// * with queries along the vector lanes, the row max, the exp and the row sums are plain vertical
//   vector operations (no horizontal reductions); a block's full score rows (48 x N floats,
//   301 KB at N = 1568) stay in L2, so no online rescaling is needed;
// * the values are accumulated with the unnormalised weights in registers, 6 queries x 64
//   channels per tile for D = 64, 128 keys at a time (in L1), and divided by the row sums once.
// Everything is fp32; results equal the explicit softmax up to fp32 summation order and exp's
// ~1 ulp error (exp is Cephes' expf); sums are blocked, so their error grows with 128 + N / 128.
//
// bf16: AMX tiles (32 queries per block) where the CPU has AMX-BF16, else AVX512-BF16
// vdpbf16ps products in the fp32 kernel's blocking; see the sections further down.
//
// Layout: q, k, v [B, H, N, D] (any strides, unit stride along D), out [B, N, H * D], i.e. the
// layout the output projection reads. Threads: torch's intra-op pool over (batch, head, block).
//
// Optional q_bias, v_bias [H * D] (fp32) are added to q and v as they are copied into the
// kernel's own layouts, so the qkv linear can run without a bias: with a bias, the BLAS addmm
// first broadcasts it into the whole [N, 3C] output and the gemm then reads that back (beta = 1),
// a ViT-S qkv linear took 6.1 ms that way against 4.2 ms as a plain mm (1568 tokens, Xeon).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>

// The kernels are x86-64 only; elsewhere the op exists and reports itself unsupported.
#if defined(__x86_64__) && defined(__GNUC__)
#define VMAE2_X86 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace {

// Scratch memory that is not zero-filled (std::vector would memset the packed keys and values,
// several MB per call, before they are overwritten); every user writes all of it first.
template <typename T>
class Buffer {
 public:
  explicit Buffer(size_t n) : data_(new T[n]) {}
  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  T& operator[](size_t i) { return data_[i]; }

 private:
  std::unique_ptr<T[]> data_;
};

#ifdef VMAE2_X86

// The two phases every kernel shares: each of the B x H heads is packed into its own slice of
// the key and value buffers, pack(i, keys_i, values_i); then the (head, block of `block_rows`
// queries) tasks run on torch's intra-op threads, each thread with its own workspace
// (make_workspace()), as block(i, start, keys_i, values_i, ws).
template <typename T, typename MakeWorkspace, typename Pack, typename Block>
void run_packed_heads(int64_t heads, int64_t n, int64_t block_rows, int64_t key_size,
                      int64_t value_size, MakeWorkspace make_workspace, Pack pack, Block block) {
  Buffer<T> keys(heads * key_size), values(heads * value_size);
  at::parallel_for(0, heads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      pack(i, keys.data() + i * key_size, values.data() + i * value_size);
    }
  });
  const int64_t blocks = (n + block_rows - 1) / block_rows;
  at::parallel_for(0, heads * blocks, 1, [&](int64_t begin, int64_t end) {
    auto ws = make_workspace();
    for (int64_t task = begin; task < end; ++task) {
      const int64_t i = task / blocks;
      block(i, (task % blocks) * block_rows, keys.data() + i * key_size,
            values.data() + i * value_size, ws);
    }
  });
}

// f(std::integral_constant<int, NV>()) for the NV = ceil(D / 16) vectors of a head (D <= 128)
template <typename F>
void with_vectors(int64_t d, F&& f) {
  switch ((d + 15) / 16) {
    case 1: f(std::integral_constant<int, 1>()); break;
    case 2: f(std::integral_constant<int, 2>()); break;
    case 3: f(std::integral_constant<int, 3>()); break;
    case 4: f(std::integral_constant<int, 4>()); break;
    case 5: f(std::integral_constant<int, 5>()); break;
    case 6: f(std::integral_constant<int, 6>()); break;
    case 7: f(std::integral_constant<int, 7>()); break;
    default: f(std::integral_constant<int, 8>()); break;
  }
}

constexpr int kTileKeys = 8;      // keys per score tile
constexpr int kBlockRows = 48;    // queries per block = 3 vectors; divisible by every tile height
constexpr int kMaxVectors = 8;    // head dim <= 128
constexpr int kValueChunk = 128;  // keys per pass of the value products

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,fma")
// GCC 12 flags the undefined pass-through operand of its own unmasked intrinsics
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "avx512_math.h"

#define VMAE2_INLINE inline __attribute__((always_inline))

template <int Rows, int NV>
VMAE2_INLINE void zero_accumulators(__m512 (&acc)[Rows][NV]) {
#pragma GCC unroll 24
  for (int r = 0; r < Rows; ++r) {
#pragma GCC unroll 8
    for (int c = 0; c < NV; ++c) acc[r][c] = _mm512_setzero_ps();
  }
}

// A score tile's epilogue (fp32 and bf16 products alike): s[jj][0:48] = acc[jj] and the running
// per-query max over the first `valid` keys in max[0:3].
VMAE2_INLINE void store_score_tile(__m512 (&acc)[kTileKeys][3], float* s, int valid,
                                   __m512 max[3]) {
#pragma GCC unroll 8
  for (int jj = 0; jj < kTileKeys; ++jj) {
    _mm512_storeu_ps(s + jj * kBlockRows, acc[jj][0]);
    _mm512_storeu_ps(s + jj * kBlockRows + 16, acc[jj][1]);
    _mm512_storeu_ps(s + jj * kBlockRows + 32, acc[jj][2]);
    if (jj < valid) {  // zero-padded keys of the last tile must not raise the max
      max[0] = _mm512_max_ps(max[0], acc[jj][0]);
      max[1] = _mm512_max_ps(max[1], acc[jj][1]);
      max[2] = _mm512_max_ps(max[2], acc[jj][2]);
    }
  }
}

// Blocked summation of a value tile (fp32 and bf16 products alike): each chunk of keys is summed
// from zero into acc, then the earlier chunks' total (acc_buf, rows NV * 16 apart) is added
// unless `first`, and the new total is kept there unless `last` (the rounding error grows with
// chunk + chunks, not with N).
template <int NV, int Rows>
VMAE2_INLINE void merge_chunk(__m512 (&acc)[Rows][NV], bool first, bool last, float* acc_buf) {
  constexpr int ldv = NV * 16;
  if (!first) {
#pragma GCC unroll 24
    for (int r = 0; r < Rows; ++r) {
#pragma GCC unroll 8
      for (int c = 0; c < NV; ++c) {
        acc[r][c] = _mm512_add_ps(acc[r][c], _mm512_loadu_ps(acc_buf + r * ldv + c * 16));
      }
    }
  }
  if (!last) {
#pragma GCC unroll 24
    for (int r = 0; r < Rows; ++r) {
#pragma GCC unroll 8
      for (int c = 0; c < NV; ++c) _mm512_storeu_ps(acc_buf + r * ldv + c * 16, acc[r][c]);
    }
  }
}

// s[jj][0:48] = sum_t key[jj][t] * qt[t][0:48] for 8 keys (rows `ldk` apart); the running
// per-query max over the first `valid` keys is kept in max[0:3].
inline void score_tile(const float* key, int64_t ldk, const float* qt, int d, int valid,
                       float* s, __m512 max[3]) {
  __m512 acc[kTileKeys][3];
  zero_accumulators(acc);
  for (int t = 0; t < d; ++t) {
    const __m512 q0 = _mm512_loadu_ps(qt + t * kBlockRows);
    const __m512 q1 = _mm512_loadu_ps(qt + t * kBlockRows + 16);
    const __m512 q2 = _mm512_loadu_ps(qt + t * kBlockRows + 32);
#pragma GCC unroll 8
    for (int jj = 0; jj < kTileKeys; ++jj) {
      const __m512 kv = _mm512_set1_ps(key[jj * ldk + t]);
      acc[jj][0] = _mm512_fmadd_ps(kv, q0, acc[jj][0]);
      acc[jj][1] = _mm512_fmadd_ps(kv, q1, acc[jj][1]);
      acc[jj][2] = _mm512_fmadd_ps(kv, q2, acc[jj][2]);
    }
  }
  store_score_tile(acc, s, valid, max);
}

// acc[r] += sum_{j0 <= j < j1} w[j][r] * v[j] for `Rows` queries (w rows kBlockRows apart,
// value rows NV * 16 apart, acc rows NV * 16 apart); with `last`, out[r] = acc[r] / sums[r] for
// the first `d` channels instead (blocked summation: merge_chunk).
template <int NV, int Rows>
inline void value_tile(const float* w, const float* v, int64_t j0, int64_t j1, bool first,
                       bool last, float* acc_buf, const float* sums, float* out, int64_t ldo,
                       int d) {
  constexpr int ldv = NV * 16;
  __m512 acc[Rows][NV];
  zero_accumulators(acc);
  for (int64_t j = j0; j < j1; ++j) {
    __m512 vv[NV];
#pragma GCC unroll 8
    for (int c = 0; c < NV; ++c) vv[c] = _mm512_loadu_ps(v + j * ldv + c * 16);
#pragma GCC unroll 24
    for (int r = 0; r < Rows; ++r) {
      const __m512 wr = _mm512_set1_ps(w[j * kBlockRows + r]);
#pragma GCC unroll 8
      for (int c = 0; c < NV; ++c) acc[r][c] = _mm512_fmadd_ps(wr, vv[c], acc[r][c]);
    }
  }
  merge_chunk(acc, first, last, acc_buf);
  if (!last) return;
#pragma GCC unroll 24
  for (int r = 0; r < Rows; ++r) {
    const __m512 inv = _mm512_set1_ps(1.0f / sums[r]);
#pragma GCC unroll 8
    for (int c = 0; c < NV; ++c) {
      _mm512_mask_storeu_ps(out + r * ldo + c * 16, tail_mask(d - c * 16),
                            _mm512_mul_ps(acc[r][c], inv));
    }
  }
}

// queries per value tile: as many as keep NV * Rows <= 24 accumulators; all divide kBlockRows
template <int NV>
constexpr int value_rows() {
  return NV == 1 ? 24 : NV == 2 ? 12 : NV == 3 ? 8 : NV == 4 ? 6 : NV <= 6 ? 4 : 3;
}

struct Problem {
  const float *q, *k, *v;
  int64_t qs[3], ks[3], vs[3];  // strides of B, H, N (D has stride 1)
  int64_t batch, heads, n, d;
  float scale;
  const float *q_bias, *v_bias;  // [H * D] or null: added to q and v (the qkv linear's biases)
  float* out;                   // [B, N, H, D]
};

struct Workspace {
  Buffer<float> qt, scores, sums, acc;
  Workspace(int64_t n, int64_t d)
      : qt(d * kBlockRows), scores(((n + kTileKeys - 1) / kTileKeys) * kTileKeys * kBlockRows),
        sums(kBlockRows), acc(kBlockRows * kMaxVectors * 16) {}
};

// One head's keys and values copied to contiguous rows: read in place, every row of a head sits
// in another 4 KB page (rows are 3C floats apart in the qkv tensor), where the hardware
// prefetchers do not follow and the products stall on L2 latency.
struct PackedHead {
  const float* keys;    // [ceil(N / 8) * 8][D], the padding rows zero
  const float* values;  // [N][NV * 16], the padding channels zero
};

template <int NV>
void query_block(const Problem& p, int64_t b, int64_t h, int64_t start, const PackedHead& kv,
                 Workspace& ws) {
  constexpr int kRows = value_rows<NV>();
  const int d = static_cast<int>(p.d);
  const int64_t n = p.n, rows = std::min<int64_t>(kBlockRows, n - start);
  const float* q = p.q + b * p.qs[0] + h * p.qs[1] + start * p.qs[2];
  const float* q_bias = p.q_bias ? p.q_bias + h * d : nullptr;
  // the block's queries, biased, scaled and transposed to [D][48]; missing queries are zeros
  for (int64_t r = 0; r < kBlockRows; ++r) {
    for (int t = 0; t < d; ++t) {
      const float biased = r < rows ? q[r * p.qs[2] + t] + (q_bias ? q_bias[t] : 0.f) : 0.f;
      ws.qt[t * kBlockRows + r] = biased * p.scale;
    }
  }
  __m512 max[3] = {_mm512_set1_ps(-INFINITY), _mm512_set1_ps(-INFINITY),
                   _mm512_set1_ps(-INFINITY)};
  float* s = ws.scores.data();
  for (int64_t j0 = 0; j0 < n; j0 += kTileKeys) {
    const int valid = static_cast<int>(std::min<int64_t>(kTileKeys, n - j0));
    score_tile(kv.keys + j0 * d, d, ws.qt.data(), d, valid, s + j0 * kBlockRows, max);
  }
  __m512 sum[3] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t j0 = 0; j0 < n; j0 += kValueChunk) {  // blocked sums, as for the values
    __m512 part[3] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t j = j0; j < std::min(n, j0 + kValueChunk); ++j) {
#pragma GCC unroll 3
      for (int c = 0; c < 3; ++c) {
        float* row = s + j * kBlockRows + c * 16;
        const __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(row), max[c]));
        _mm512_storeu_ps(row, e);
        part[c] = _mm512_add_ps(part[c], e);
      }
    }
    for (int c = 0; c < 3; ++c) sum[c] = _mm512_add_ps(sum[c], part[c]);
  }
  for (int c = 0; c < 3; ++c) _mm512_storeu_ps(ws.sums.data() + c * 16, sum[c]);
  // values in chunks of kValueChunk keys (32 KB at D = 64), each chunk used by every query of
  // the block while it sits in L1
  const int64_t ldo = p.heads * p.d, ldv = NV * 16;
  float* out = p.out + (b * n + start) * ldo + h * p.d;
  for (int64_t j0 = 0; j0 < n; j0 += kValueChunk) {
    const int64_t j1 = std::min(n, j0 + kValueChunk);
    const bool first = j0 == 0, last = j1 == n;
    int64_t r0 = 0;
    for (; r0 + kRows <= rows; r0 += kRows) {
      value_tile<NV, kRows>(s + r0, kv.values, j0, j1, first, last, ws.acc.data() + r0 * ldv,
                            ws.sums.data() + r0, out + r0 * ldo, ldo, d);
    }
    for (; r0 < rows; ++r0) {  // the sequence's last queries, one at a time
      value_tile<NV, 1>(s + r0, kv.values, j0, j1, first, last, ws.acc.data() + r0 * ldv,
                        ws.sums.data() + r0, out + r0 * ldo, ldo, d);
    }
  }
}

template <int NV>
void run(const Problem& p) {
  const int64_t d = p.d, dv = NV * 16;
  const int64_t key_rows = ((p.n + kTileKeys - 1) / kTileKeys) * kTileKeys;
  const int64_t key_size = key_rows * d;
  run_packed_heads<float>(
      p.batch * p.heads, p.n, kBlockRows, key_size, p.n * dv, [&] { return Workspace(p.n, d); },
      [&](int64_t i, float* kd, float* vd) {
        const int64_t b = i / p.heads, h = i % p.heads;
        const float* k = p.k + b * p.ks[0] + h * p.ks[1];
        const float* v = p.v + b * p.vs[0] + h * p.vs[1];
        const float* v_bias = p.v_bias ? p.v_bias + h * d : nullptr;
        for (int64_t j = 0; j < p.n; ++j) {
          std::memcpy(kd + j * d, k + j * p.ks[2], d * sizeof(float));
          if (v_bias) {
            for (int64_t t = 0; t < d; ++t) vd[j * dv + t] = v[j * p.vs[2] + t] + v_bias[t];
          } else {
            std::memcpy(vd + j * dv, v + j * p.vs[2], d * sizeof(float));
          }
          std::fill(vd + j * dv + d, vd + (j + 1) * dv, 0.f);
        }
        std::fill(kd + p.n * d, kd + key_size, 0.f);
      },
      [&](int64_t i, int64_t start, const float* keys, const float* values, Workspace& ws) {
        query_block<NV>(p, i / p.heads, i % p.heads, start, PackedHead{keys, values}, ws);
      });
}

#pragma GCC diagnostic pop
#pragma GCC pop_options


// ---------------------------------------------------------------------------------------------
// bf16 without AMX (AVX512-BF16: AMD Zen 4, Intel Cooper Lake): the fp32 kernel's blocking (48
// queries per block, 8 keys x 48 queries per score tile, values in registers) with vdpbf16ps
// products, each of which sums two bf16 products into every fp32 lane, so one instruction does
// the work of two FMAs. Numerics as the AMX kernel's and torch's reduced-precision flash
// attention: the biased q and v are rounded to bf16, scores, exp and sums are fp32, and the
// weights are rounded to bf16 for the value product. Why not the fp32 kernel on upcast q/k/v:
// it needs three casts per call and runs its products at the fp32 rate (half of the bf16 one).
// Products reduce over pairs, so the operands are laid out as bf16 pairs (one 32-bit element
// each): q and k pair adjacent dims (a key row is already that), the values and the weights
// pair adjacent keys.

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx512bf16,fma")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

// 2^t for t <= 0 to ~4e-5 relative (degree-4 Taylor polynomial of 2^f on |f| <= 1/2), enough
// for weights rounded to bf16 (2^-8 relative); 0 below -125 (no denormals).
inline __m512 exp2_nonpositive_bf16_accurate(__m512 t) {
  const __m512 lowest = _mm512_set1_ps(-125.f);
  const __mmask16 representable = _mm512_cmp_ps_mask(t, lowest, _CMP_GE_OQ);
  t = _mm512_max_ps(t, lowest);
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p = _mm512_set1_ps(9.6181291e-3f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504109e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022651e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.f));
  return _mm512_maskz_scalef_ps(representable, p, n);
}

// `count` (at most 16, the rest 0) bf16 values from `src`, plus bias[0:count] when there is a
// bias (in fp32, then rounded to nearest even)
inline __m256i load_bf16(const uint16_t* src, const float* bias, int64_t count) {
  const __mmask16 mask = tail_mask(count);
  const __m256i x = _mm256_maskz_loadu_epi16(mask, src);
  if (!bias) return x;
  const __m512 f = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(x), 16));
  return reinterpret_cast<__m256i>(
      _mm512_cvtneps_pbh(_mm512_add_ps(f, _mm512_maskz_loadu_ps(mask, bias))));
}

// 32 bf16 values as 16 pairs: src[0:32] (+ bias), zero past `count`
inline __m512i load_bf16_pairs(const uint16_t* src, const float* bias, int64_t count) {
  const __m256i lo = load_bf16(src, bias, count);
  const __m256i hi = load_bf16(src + 16, bias ? bias + 16 : nullptr, count - 16);
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// 16 pairs (even[i], odd[i]) from two vectors of 16 bf16
inline __m512i interleave_bf16(__m256i even, __m256i odd) {
  const __m512i order = _mm512_set_epi16(
      31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4,
      19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(order,
                                  _mm512_inserti64x4(_mm512_castsi256_si512(even), odd, 1));
}

inline __m512 dot_pairs(__m512 acc, __m512i a, __m512i b) {
  return _mm512_dpbf16_ps(acc, reinterpret_cast<__m512bh>(a), reinterpret_cast<__m512bh>(b));
}

// s[jj][0:48] = sum_t key[jj][t] . qt[t][0:48] over `pairs` dim pairs for 8 keys (rows `ldk`
// pairs apart); the running per-query max over the first `valid` keys is kept in max[0:3].
inline void dot_score_tile(const int32_t* key, int64_t ldk, const int32_t* qt, int pairs,
                           int valid, float* s, __m512 max[3]) {
  __m512 acc[kTileKeys][3];
  zero_accumulators(acc);
  for (int t = 0; t < pairs; ++t) {
    const __m512i q0 = _mm512_loadu_si512(qt + t * kBlockRows);
    const __m512i q1 = _mm512_loadu_si512(qt + t * kBlockRows + 16);
    const __m512i q2 = _mm512_loadu_si512(qt + t * kBlockRows + 32);
#pragma GCC unroll 8
    for (int jj = 0; jj < kTileKeys; ++jj) {
      const __m512i kv = _mm512_set1_epi32(key[jj * ldk + t]);
      acc[jj][0] = dot_pairs(acc[jj][0], kv, q0);
      acc[jj][1] = dot_pairs(acc[jj][1], kv, q1);
      acc[jj][2] = dot_pairs(acc[jj][2], kv, q2);
    }
  }
  store_score_tile(acc, s, valid, max);
}

// acc[r] += sum_{p0 <= p < p1} w[p][r] . v[p] over key pairs for `Rows` queries (weight pairs
// kBlockRows apart, value rows NV * 16 pairs apart, acc rows NV * 16 apart); with `last`,
// out[r] = acc[r] / sums[r] rounded to bf16 for the first `d` channels instead (blocked
// summation: merge_chunk).
template <int NV, int Rows>
inline void dot_value_tile(const int32_t* w, const int32_t* v, int64_t p0, int64_t p1,
                           bool first, bool last, float* acc_buf, const float* sums,
                           uint16_t* out, int64_t ldo, int d) {
  constexpr int ldv = NV * 16;
  __m512 acc[Rows][NV];
  zero_accumulators(acc);
  for (int64_t p = p0; p < p1; ++p) {
    __m512i vv[NV];
#pragma GCC unroll 8
    for (int c = 0; c < NV; ++c) vv[c] = _mm512_loadu_si512(v + p * ldv + c * 16);
#pragma GCC unroll 24
    for (int r = 0; r < Rows; ++r) {
      const __m512i wr = _mm512_set1_epi32(w[p * kBlockRows + r]);
#pragma GCC unroll 8
      for (int c = 0; c < NV; ++c) acc[r][c] = dot_pairs(acc[r][c], wr, vv[c]);
    }
  }
  merge_chunk(acc, first, last, acc_buf);
  if (!last) return;
#pragma GCC unroll 24
  for (int r = 0; r < Rows; ++r) {
    const __m512 inv = _mm512_set1_ps(1.0f / sums[r]);
#pragma GCC unroll 8
    for (int c = 0; c < NV; ++c) {
      _mm256_mask_storeu_epi16(out + r * ldo + c * 16, tail_mask(d - c * 16),
                               reinterpret_cast<__m256i>(
                                   _mm512_cvtneps_pbh(_mm512_mul_ps(acc[r][c], inv))));
    }
  }
}

struct Bf16Problem {
  const uint16_t *q, *k, *v;    // bf16 bits
  int64_t qs[3], ks[3], vs[3];  // strides of B, H, N (D has stride 1)
  int64_t batch, heads, n, d;
  float scale;
  const float *q_bias, *v_bias;  // [H * D] or null; the biased q and v are rounded to bf16
  uint16_t* out;                // [B, N, H, D] bf16 bits
};

struct DotWorkspace {
  Buffer<uint16_t> row;          // one query's biased dims, padded to 16
  Buffer<int32_t> qt, w;         // [D / 2][48] query pairs, [N / 2][48] weight pairs
  Buffer<float> scores, sums, acc;
  DotWorkspace(int64_t n, int64_t d)
      : row((d + 15) / 16 * 16), qt((d + 1) / 2 * kBlockRows), w((n + 1) / 2 * kBlockRows),
        scores(((n + kTileKeys - 1) / kTileKeys) * kTileKeys * kBlockRows), sums(kBlockRows),
        acc(kBlockRows * kMaxVectors * 16) {}
};

// One head packed: keys as [ceil(N / 8) * 8][D / 2] dim pairs (a zero dim pads an odd D, zero
// rows pad the keys) and values as [ceil(N / 2)][NV * 16] key pairs (a zero key pads an odd N,
// zero channels pad D).
struct DotPackedHead {
  const int32_t* keys;
  const int32_t* values;
};

template <int NV>
void dot_pack_head(const Bf16Problem& p, int64_t b, int64_t h, int32_t* keys, int32_t* values) {
  const int64_t pairs = (p.d + 1) / 2, key_rows = (p.n + kTileKeys - 1) / kTileKeys * kTileKeys;
  const uint16_t* k = p.k + b * p.ks[0] + h * p.ks[1];
  const uint16_t* v = p.v + b * p.vs[0] + h * p.vs[1];
  const float* v_bias = p.v_bias ? p.v_bias + h * p.d : nullptr;
  for (int64_t j = 0; j < key_rows; ++j) {
    uint16_t* row = reinterpret_cast<uint16_t*>(keys + j * pairs);
    for (int64_t t = 0; t < 2 * pairs; t += 16) {
      const __m256i x = j < p.n ? load_bf16(k + j * p.ks[2] + t, nullptr, p.d - t)
                                : _mm256_setzero_si256();
      _mm256_mask_storeu_epi16(row + t, tail_mask(2 * pairs - t), x);
    }
  }
  for (int64_t j = 0; j < p.n; j += 2) {
    for (int c = 0; c < NV; ++c) {
      const float* bias = v_bias ? v_bias + c * 16 : nullptr;
      const int64_t count = p.d - c * 16;
      const __m256i even = load_bf16(v + j * p.vs[2] + c * 16, bias, count);
      const __m256i odd = j + 1 < p.n ? load_bf16(v + (j + 1) * p.vs[2] + c * 16, bias, count)
                                      : _mm256_setzero_si256();
      _mm512_storeu_si512(values + (j / 2) * NV * 16 + c * 16, interleave_bf16(even, odd));
    }
  }
}

template <int NV>
void dot_query_block(const Bf16Problem& p, int64_t b, int64_t h, int64_t start,
                     const DotPackedHead& kv, DotWorkspace& ws) {
  constexpr int kRows = value_rows<NV>();
  const int d = static_cast<int>(p.d), pairs = (d + 1) / 2;
  const int64_t n = p.n, rows = std::min<int64_t>(kBlockRows, n - start);
  const uint16_t* q = p.q + b * p.qs[0] + h * p.qs[1] + start * p.qs[2];
  const float* q_bias = p.q_bias ? p.q_bias + h * d : nullptr;
  // the block's queries, biased and rounded, as dim pairs transposed to [D / 2][48]; missing
  // queries are zeros
  const int32_t* row32 = reinterpret_cast<const int32_t*>(ws.row.data());
  for (int64_t r = 0; r < kBlockRows; ++r) {
    for (int t = 0; t < d; t += 16) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(ws.row.data() + t),
                          r < rows ? load_bf16(q + r * p.qs[2] + t, q_bias ? q_bias + t : nullptr,
                                               d - t)
                                   : _mm256_setzero_si256());
    }
    for (int t = 0; t < pairs; ++t) ws.qt[t * kBlockRows + r] = row32[t];
  }
  __m512 max[3] = {_mm512_set1_ps(-INFINITY), _mm512_set1_ps(-INFINITY),
                   _mm512_set1_ps(-INFINITY)};
  float* s = ws.scores.data();
  for (int64_t j0 = 0; j0 < n; j0 += kTileKeys) {
    const int valid = static_cast<int>(std::min<int64_t>(kTileKeys, n - j0));
    dot_score_tile(kv.keys + j0 * pairs, pairs, ws.qt.data(), pairs, valid,
                   s + j0 * kBlockRows, max);
  }
  // weights 2^(s * c - max * c) = exp((s - max) * scale), fp32 sums (blocked as the values'),
  // weights rounded to bf16 and paired by keys; a padding key (odd N) gets weight 0
  const float c = p.scale * 1.44269504088896341f;
  const __m512 vc = _mm512_set1_ps(c);
  __m512 offset[3], sum[3];
  for (int i = 0; i < 3; ++i) {
    offset[i] = _mm512_mul_ps(max[i], vc);
    sum[i] = _mm512_setzero_ps();
  }
  for (int64_t j0 = 0; j0 < n; j0 += kValueChunk) {
    __m512 part[3] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t j = j0; j < std::min(n, j0 + kValueChunk); j += 2) {
      const bool pair = j + 1 < n;
#pragma GCC unroll 3
      for (int i = 0; i < 3; ++i) {
        const float* row = s + j * kBlockRows + i * 16;
        const __m512 e0 = exp2_nonpositive_bf16_accurate(
            _mm512_fmsub_ps(_mm512_loadu_ps(row), vc, offset[i]));
        const __m512 e1 = pair ? exp2_nonpositive_bf16_accurate(_mm512_fmsub_ps(
                                     _mm512_loadu_ps(row + kBlockRows), vc, offset[i]))
                               : _mm512_setzero_ps();
        part[i] = _mm512_add_ps(part[i], _mm512_add_ps(e0, e1));
        _mm512_storeu_si512(ws.w.data() + (j / 2) * kBlockRows + i * 16,
                            interleave_bf16(reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(e0)),
                                            reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(e1))));
      }
    }
    for (int i = 0; i < 3; ++i) sum[i] = _mm512_add_ps(sum[i], part[i]);
  }
  for (int i = 0; i < 3; ++i) _mm512_storeu_ps(ws.sums.data() + i * 16, sum[i]);
  // values in chunks of kValueChunk keys, each used by every query of the block while in L1
  const int64_t ldo = p.heads * p.d, ldv = NV * 16, key_pairs = (n + 1) / 2;
  uint16_t* out = p.out + (b * n + start) * ldo + h * p.d;
  for (int64_t p0 = 0; p0 < key_pairs; p0 += kValueChunk / 2) {
    const int64_t p1 = std::min(key_pairs, p0 + kValueChunk / 2);
    const bool first = p0 == 0, last = p1 == key_pairs;
    int64_t r0 = 0;
    for (; r0 + kRows <= rows; r0 += kRows) {
      dot_value_tile<NV, kRows>(ws.w.data() + r0, kv.values, p0, p1, first, last,
                                ws.acc.data() + r0 * ldv, ws.sums.data() + r0, out + r0 * ldo,
                                ldo, d);
    }
    for (; r0 < rows; ++r0) {  // the sequence's last queries, one at a time
      dot_value_tile<NV, 1>(ws.w.data() + r0, kv.values, p0, p1, first, last,
                            ws.acc.data() + r0 * ldv, ws.sums.data() + r0, out + r0 * ldo, ldo,
                            d);
    }
  }
}

template <int NV>
void dot_run(const Bf16Problem& p) {
  const int64_t key_size = (p.n + kTileKeys - 1) / kTileKeys * kTileKeys * ((p.d + 1) / 2);
  run_packed_heads<int32_t>(
      p.batch * p.heads, p.n, kBlockRows, key_size, (p.n + 1) / 2 * NV * 16,
      [&] { return DotWorkspace(p.n, p.d); },
      [&](int64_t i, int32_t* keys, int32_t* values) {
        dot_pack_head<NV>(p, i / p.heads, i % p.heads, keys, values);
      },
      [&](int64_t i, int64_t start, const int32_t* keys, const int32_t* values,
          DotWorkspace& ws) {
        dot_query_block<NV>(p, i / p.heads, i % p.heads, start, DotPackedHead{keys, values}, ws);
      });
}

#pragma GCC diagnostic pop
#pragma GCC pop_options

// ---------------------------------------------------------------------------------------------
// bf16 (q, k, v from autocast): AMX tile products, fp32 scores, exp and sums, like torch's CPU
// flash attention for reduced precision (the weights are rounded to bf16 for the value product),
// 32 queries per block. torch 2.13's kernel reaches about a quarter of the AMX matmul peak at
// ViT sizes; its exp over the fp32 scores, not the products, is most of the time here.

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx512bf16,fma,amx-tile,amx-bf16")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

constexpr int kAmxBlock = 32;  // queries per block: two 16-row tiles
constexpr int kAmxKeys = 32;   // keys per value-product step (and key padding)

struct TileConfig {  // palette 1, every tile 16 rows x 64 bytes
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};

struct AmxProblem {
  const uint16_t *q, *k, *v;    // bf16 bits
  int64_t qs[3], ks[3], vs[3];
  int64_t batch, heads, n, d;
  float scale;
  const float *q_bias, *v_bias;  // [H * D] or null, as for fp32; biased q, v rounded to bf16
  uint16_t* out;                // [B, N, H, D] bf16 bits
  int64_t np, dp, ct;           // keys padded to 32, head dim padded to 32, 16-channel tiles
};

// keys as [N/16 key tiles][Dp/32 chunks][16 pairs of dims][16 keys x 2] and values as
// [N/32 key chunks][ct channel tiles][16 pairs of keys][16 channels x 2] (AMX's B layout)
void amx_pack_head(const AmxProblem& p, int64_t b, int64_t h, uint16_t* kp, uint16_t* vp) {
  const uint16_t* k = p.k + b * p.ks[0] + h * p.ks[1];
  const uint16_t* v = p.v + b * p.vs[0] + h * p.vs[1];
  const float* v_bias = p.v_bias ? p.v_bias + h * p.d : nullptr;
  const int64_t chunks = p.dp / 32;
  // key tile: 32-bit element [r][j] is key j's dims (2r, 2r + 1), so each key's 32 dims (one
  // vector of 16 pairs) go to column j: a scatter with a stride of 16 elements
  const __m512i column = _mm512_mullo_epi32(
      _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(16));
  for (int64_t kt = 0; kt < p.np / 16; ++kt) {
    for (int64_t dc = 0; dc < chunks; ++dc) {
      int32_t* tile = reinterpret_cast<int32_t*>(kp + (kt * chunks + dc) * 512);
      for (int j = 0; j < 16; ++j) {
        const int64_t key = kt * 16 + j;
        const __m512i dims = key < p.n ? load_bf16_pairs(k + key * p.ks[2] + dc * 32, nullptr,
                                                         p.d - dc * 32)
                                       : _mm512_setzero_si512();
        _mm512_i32scatter_epi32(tile + j, column, dims, 4);
      }
    }
  }
  // value tile: row r interleaves keys 2r and 2r + 1 channel by channel
  for (int64_t kc = 0; kc < p.np / kAmxKeys; ++kc) {
    for (int64_t c = 0; c < p.ct; ++c) {
      uint16_t* tile = vp + (kc * p.ct + c) * 512;
      const float* bias = v_bias ? v_bias + c * 16 : nullptr;
      for (int r = 0; r < 16; ++r) {
        const int64_t key = kc * kAmxKeys + 2 * r;
        const __m256i even = key < p.n ? load_bf16(v + key * p.vs[2] + c * 16, bias, p.d - c * 16)
                                       : _mm256_setzero_si256();
        const __m256i odd = key + 1 < p.n
                                ? load_bf16(v + (key + 1) * p.vs[2] + c * 16, bias, p.d - c * 16)
                                : _mm256_setzero_si256();
        _mm512_storeu_si512(tile + r * 32, interleave_bf16(even, odd));
      }
    }
  }
}

struct AmxWorkspace {
  Buffer<uint16_t> q, w;    // [32][Dp] queries, [32][Np] weights (bf16)
  Buffer<float> s, o, sums; // [32][Np] scores, [32][ct * 16] outputs, [32]
  AmxWorkspace(const AmxProblem& p)
      : q(kAmxBlock * p.dp), w(kAmxBlock * p.np), s(kAmxBlock * p.np),
        o(kAmxBlock * p.ct * 16), sums(kAmxBlock) {}
};

void amx_query_block(const AmxProblem& p, int64_t b, int64_t h, int64_t start,
                     const uint16_t* kp, const uint16_t* vp, AmxWorkspace& ws) {
  const int64_t rows = std::min<int64_t>(kAmxBlock, p.n - start), chunks = p.dp / 32;
  const uint16_t* q = p.q + b * p.qs[0] + h * p.qs[1] + start * p.qs[2];
  const float* q_bias = p.q_bias ? p.q_bias + h * p.d : nullptr;
  for (int64_t r = 0; r < kAmxBlock; ++r) {
    for (int64_t t = 0; t < p.dp; t += 32) {
      _mm512_storeu_si512(ws.q.data() + r * p.dp + t,
                          r < rows ? load_bf16_pairs(q + r * p.qs[2] + t,
                                                     q_bias ? q_bias + t : nullptr, p.d - t)
                                   : _mm512_setzero_si512());
    }
  }
  // scores: 32 queries x 32 keys per step, four 16 x 16 fp32 tiles, stored tile-major as
  // [N / 16 key tiles][32 queries][16 keys] (contiguous 1 KB tile stores)
  const int64_t ldq = p.dp * 2;
  for (int64_t k0 = 0; k0 < p.np; k0 += 32) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int64_t dc = 0; dc < chunks; ++dc) {
      _tile_loadd(4, ws.q.data() + dc * 32, ldq);
      _tile_loadd(5, ws.q.data() + 16 * p.dp + dc * 32, ldq);
      _tile_loadd(6, kp + ((k0 / 16) * chunks + dc) * 512, 64);
      _tile_loadd(7, kp + ((k0 / 16 + 1) * chunks + dc) * 512, 64);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
    float* s = ws.s.data() + k0 * kAmxBlock;  // key tile k0 / 16, then k0 / 16 + 1
    _tile_stored(0, s, 64);
    _tile_stored(2, s + 16 * 16, 64);
    _tile_stored(1, s + 32 * 16, 64);
    _tile_stored(3, s + 32 * 16 + 16 * 16, 64);
  }
  // weights exp((s - max) * scale) rounded to bf16 (0 for padded keys), fp32 sums; weights
  // stored tile-major as [N / 32 key chunks][32 queries][32 keys] for the value tiles. Both
  // passes go key tile by key tile over 16 queries at a time (16 vector accumulators): a
  // query's pieces of 16 scores are 2 KB apart, and walking one query's row across the tiles
  // hit the same two L1 sets over and over (1.5 ms of a 6.2 ms ViT-S layer).
  // exp((s - max) * scale) = 2^(s * c - max * c) with c = scale * log2(e): one FMA.
  // Padded queries (rows >= `rows`, zero scores) are computed like the others and not stored.
  const int n = static_cast<int>(p.n);
  const int64_t key_tiles = p.np / 16;
  const float c = p.scale * 1.44269504088896341f;
  const __m512 vc = _mm512_set1_ps(c);
  float offsets[kAmxBlock];
  for (int half = 0; half < kAmxBlock / 16; ++half) {
    __m512 m[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) m[i] = _mm512_set1_ps(-INFINITY);
    for (int64_t t = 0; t < key_tiles; ++t) {
      const __mmask16 mask = tail_mask(n - t * 16);
      const float* tile = ws.s.data() + (t * kAmxBlock + half * 16) * 16;
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i) {
        m[i] = _mm512_mask_max_ps(m[i], mask, m[i], _mm512_loadu_ps(tile + i * 16));
      }
    }
    for (int i = 0; i < 16; ++i) offsets[half * 16 + i] = _mm512_reduce_max_ps(m[i]) * c;
  }
  for (int half = 0; half < kAmxBlock / 16; ++half) {
    __m512 sum[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) sum[i] = _mm512_setzero_ps();
    for (int64_t t = 0; t < key_tiles; ++t) {
      const __mmask16 mask = tail_mask(n - t * 16);
      const float* tile = ws.s.data() + (t * kAmxBlock + half * 16) * 16;
      uint16_t* w = ws.w.data() + ((t / 2) * kAmxBlock + half * 16) * 32 + (t % 2) * 16;
#pragma GCC unroll 4
      for (int i = 0; i < 16; ++i) {
        const __m512 e = _mm512_maskz_mov_ps(
            mask, exp2_nonpositive_bf16_accurate(_mm512_fmsub_ps(
                      _mm512_loadu_ps(tile + i * 16), vc, _mm512_set1_ps(offsets[half * 16 + i]))));
        sum[i] = _mm512_add_ps(sum[i], e);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(w + i * 32),
                            reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(e)));
      }
    }
    for (int i = 0; i < 16; ++i) ws.sums[half * 16 + i] = _mm512_reduce_add_ps(sum[i]);
  }
  // values: 32 queries x 32 channels per pass, 32 keys per step
  const int64_t ldo = p.ct * 16 * 4;
  for (int64_t c0 = 0; c0 < p.ct; c0 += 2) {
    const bool pair = c0 + 1 < p.ct;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int64_t kc = 0; kc < p.np / kAmxKeys; ++kc) {
      const uint16_t* w = ws.w.data() + kc * kAmxBlock * 32;
      _tile_loadd(4, w, 64);
      _tile_loadd(5, w + 16 * 32, 64);
      _tile_loadd(6, vp + (kc * p.ct + c0) * 512, 64);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(2, 5, 6);
      if (pair) {
        _tile_loadd(7, vp + (kc * p.ct + c0 + 1) * 512, 64);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(3, 5, 7);
      }
    }
    float* o = ws.o.data() + c0 * 16;
    _tile_stored(0, o, ldo);
    _tile_stored(2, o + 16 * p.ct * 16, ldo);
    if (pair) {
      _tile_stored(1, o + 16, ldo);
      _tile_stored(3, o + 16 * p.ct * 16 + 16, ldo);
    }
  }
  const int64_t ld_out = p.heads * p.d;
  uint16_t* out = p.out + (b * p.n + start) * ld_out + h * p.d;
  for (int64_t r = 0; r < rows; ++r) {
    const __m512 inv = _mm512_set1_ps(1.f / ws.sums[r]);
    for (int64_t c = 0; c < p.d; c += 16) {
      _mm256_mask_storeu_epi16(out + r * ld_out + c, tail_mask(p.d - c),
                               reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(
                                   _mm512_mul_ps(_mm512_loadu_ps(ws.o.data() + r * p.ct * 16 + c), inv))));
    }
  }
}

void amx_run(const AmxProblem& p) {
  const int64_t heads = p.batch * p.heads, chunks = p.dp / 32;
  const int64_t key_size = (p.np / 16) * chunks * 512, value_size = (p.np / kAmxKeys) * p.ct * 512;
  Buffer<uint16_t> keys(heads * key_size), values(heads * value_size);
  at::parallel_for(0, heads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      amx_pack_head(p, i / p.heads, i % p.heads, keys.data() + i * key_size,
                    values.data() + i * value_size);
    }
  });
  const int64_t blocks = (p.n + kAmxBlock - 1) / kAmxBlock;
  at::parallel_for(0, heads * blocks, 1, [&](int64_t begin, int64_t end) {
    const TileConfig config;
    _tile_loadconfig(&config);  // per thread
    AmxWorkspace ws(p);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t i = task / blocks;
      amx_query_block(p, i / p.heads, i % p.heads, (task % blocks) * kAmxBlock,
                      keys.data() + i * key_size, values.data() + i * value_size, ws);
    }
    _tile_release();
  });
}

#pragma GCC diagnostic pop
#pragma GCC pop_options

#endif  // VMAE2_X86

bool cpu_supported() {
#ifndef VMAE2_X86
  return false;
#else
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("fma");
#endif
}

// AVX512-BF16 (with BW and VL) for the vdpbf16ps kernel
bool avx512_bf16_supported() {
#ifndef VMAE2_X86
  return false;
#else
  return cpu_supported() && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
#endif
}

// AMX-BF16 and AVX512-BF16 in cpuid, and the kernel's permission to use the tile data state
bool amx_supported() {
#ifndef VMAE2_X86
  return false;
#else
  static const bool supported = [] {
    if (!cpu_supported() || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl")) {
      return false;
    }
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 22)) || !(d & (1u << 24))) {
      return false;
    }
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !(a & (1u << 5))) return false;
    constexpr long kReqXcompPerm = 0x1023, kXtiledata = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXtiledata) == 0;
  }();
  return supported;
#endif
}

at::Tensor fused_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           double scale, const c10::optional<at::Tensor>& q_bias,
                           const c10::optional<at::Tensor>& v_bias,
                           c10::string_view bf16_kernel) {
#ifndef VMAE2_X86
  TORCH_CHECK(false, "vmae2_mm::cpu_fused_attention is built for x86-64 CPUs only");
#else
  TORCH_CHECK(q.dim() == 4 && k.sizes() == q.sizes() && v.sizes() == q.sizes(),
              "q, k, v must all be [B, H, N, D], got ", q.sizes(), ", ", k.sizes(), ", ",
              v.sizes());
  const bool bf16 = q.scalar_type() == at::kBFloat16;
  for (const at::Tensor* t : {&q, &k, &v}) {
    TORCH_CHECK(t->device().is_cpu() && t->scalar_type() == (bf16 ? at::kBFloat16 : at::kFloat),
                "q, k, v must be float32 or bfloat16 CPU tensors of one dtype, got ",
                q.scalar_type(), ", ", k.scalar_type(), ", ", v.scalar_type());
    TORCH_CHECK(t->stride(3) == 1, "q, k, v need unit stride along D");
  }
  const int64_t batch = q.size(0), heads = q.size(1), n = q.size(2), d = q.size(3);
  TORCH_CHECK(d >= 1 && d <= kMaxVectors * 16, "head dim must be in [1, 128], got ", d);
  TORCH_CHECK(n >= 1, "sequence length must be >= 1");
  const auto bias_data = [&](const c10::optional<at::Tensor>& bias, const char* name) {
    if (!bias.has_value() || !bias->defined()) return static_cast<const float*>(nullptr);
    TORCH_CHECK(bias->device().is_cpu() && bias->scalar_type() == at::kFloat &&
                    bias->dim() == 1 && bias->size(0) == heads * d && bias->is_contiguous(),
                name, " must be a contiguous float32 CPU tensor of shape [H * D] = [", heads * d,
                "], got ", bias->scalar_type(), " of shape ", bias->sizes());
    return static_cast<const float*>(bias->data_ptr<float>());
  };
  const float* qb = bias_data(q_bias, "q_bias");
  const float* vb = bias_data(v_bias, "v_bias");
  at::Tensor out = at::empty({batch, n, heads * d}, q.options());
  if (bf16) {
    TORCH_CHECK(bf16_kernel == "auto" || bf16_kernel == "amx" || bf16_kernel == "avx512_bf16",
                "bf16_kernel must be 'auto', 'amx' or 'avx512_bf16', got '", bf16_kernel, "'");
    const bool amx = bf16_kernel == "amx" || (bf16_kernel == "auto" && amx_supported());
    TORCH_CHECK(!amx || amx_supported(),
                "vmae2_mm::cpu_fused_attention: this CPU has no AMX-BF16 (bf16_kernel='amx')");
    TORCH_CHECK(amx || avx512_bf16_supported(),
                "vmae2_mm::cpu_fused_attention needs AMX-BF16 or AVX512-BF16 for bfloat16");
    const auto bits = [](const at::Tensor& t) {
      return static_cast<const uint16_t*>(t.data_ptr());
    };
    if (!amx) {
      const Bf16Problem p{bits(q), bits(k), bits(v),
                          {q.stride(0), q.stride(1), q.stride(2)},
                          {k.stride(0), k.stride(1), k.stride(2)},
                          {v.stride(0), v.stride(1), v.stride(2)},
                          batch, heads, n, d, static_cast<float>(scale), qb, vb,
                          static_cast<uint16_t*>(out.data_ptr())};
      with_vectors(d, [&](auto nv) { dot_run<decltype(nv)::value>(p); });
      return out;
    }
    const int64_t np = (n + kAmxKeys - 1) / kAmxKeys * kAmxKeys;
    const AmxProblem p{bits(q), bits(k), bits(v),
                       {q.stride(0), q.stride(1), q.stride(2)},
                       {k.stride(0), k.stride(1), k.stride(2)},
                       {v.stride(0), v.stride(1), v.stride(2)},
                       batch, heads, n, d, static_cast<float>(scale), qb, vb,
                       static_cast<uint16_t*>(out.data_ptr()), np, (d + 31) / 32 * 32,
                       (d + 15) / 16};
    amx_run(p);
    return out;
  }
  TORCH_CHECK(cpu_supported(), "vmae2_mm::cpu_fused_attention needs an AVX-512 CPU");
  const Problem p{q.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(),
                  {q.stride(0), q.stride(1), q.stride(2)},
                  {k.stride(0), k.stride(1), k.stride(2)},
                  {v.stride(0), v.stride(1), v.stride(2)},
                  batch, heads, n, d, static_cast<float>(scale), qb, vb,
                  out.data_ptr<float>()};
  with_vectors(d, [&](auto nv) { run<decltype(nv)::value>(p); });
  return out;
#endif
}

}  // namespace

TORCH_LIBRARY(vmae2_mm, m) {
  m.def("cpu_fused_attention(Tensor q, Tensor k, Tensor v, float scale, Tensor? q_bias=None, "
        "Tensor? v_bias=None, str bf16_kernel='auto') -> Tensor");
  m.def("cpu_fused_attention_supported() -> bool", &cpu_supported);
  m.def("cpu_fused_attention_bf16_supported() -> bool", &amx_supported);
  m.def("cpu_fused_attention_avx512_bf16_supported() -> bool", &avx512_bf16_supported);
}

TORCH_LIBRARY_IMPL(vmae2_mm, CPU, m) { m.impl("cpu_fused_attention", fused_attention); }
