/*
 * Bare C reference for btmsim's TLB lookup loop (issue 9): the same geometry (2048 entries,
 * 4-way, 512 sets), the same tag check (world, VMID, ASID or global+ASET, VA vs IPA, page within
 * the entry's span), the same mix (80% hits, 10% 2 MiB blocks probed second, 5% global), keys
 * precomputed in arrays. Prints lookups per second. Built and run by `npm run bench` when a C
 * compiler is present; our rate is reported as a fraction of this one.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define SETS 512
#define WAYS 4
#define N (1 << 16)

typedef struct { uint8_t valid, world, global, aset, stage, size_log2; int32_t vmid, asid; double page, out; } entry_t;
static entry_t tlb[SETS * WAYS];
static int rr;
static int size_present[64];

static uint32_t s[4] = { 0x9e3779b9, 0x243f6a88, 0xb7e15162, 1 };
static uint32_t sfc32(void) {
  uint32_t t = s[0] + s[1] + s[3]++;
  s[0] = s[1] ^ (s[1] >> 9); s[1] = s[2] + (s[2] << 3);
  s[2] = (s[2] << 21) | (s[2] >> 11); s[2] += t;
  return t;
}
static uint32_t rnd(uint32_t n) { return (uint32_t)(((uint64_t)sfc32() * n) >> 32); }

static inline uint32_t set_index(double page, int size_log2) {
  uint64_t p = (uint64_t)page >> size_log2;
  uint32_t lo = (uint32_t)p, hi = (uint32_t)(p >> 32);
  return (lo ^ (lo >> 9) ^ hi) & (SETS - 1);
}

static void fill(int vmid, int asid, double page, int k, int global) {
  uint32_t set = set_index(page, k);
  int w, slot = -1;
  for (w = 0; w < WAYS; w++) if (!tlb[set * WAYS + w].valid) { slot = set * WAYS + w; break; }
  if (slot < 0) slot = set * WAYS + (rr++ % WAYS);
  entry_t *e = &tlb[slot];
  e->valid = 1; e->world = 1; e->global = global; e->aset = 0; e->stage = 1; e->size_log2 = k;
  e->vmid = vmid; e->asid = global ? -1 : asid; e->page = page; e->out = page + 0x80000;
  size_present[k]++;
}

static inline int lookup(int world, int vmid, int asid, int aset, double page) {
  static const int sizes[2] = { 0, 9 };
  for (int si = 0; si < 2; si++) {
    int k = sizes[si];
    if (!size_present[k]) continue;
    uint32_t set = set_index(page, k);
    for (int w = 0; w < WAYS; w++) {
      const entry_t *e = &tlb[set * WAYS + w];
      if (!e->valid || e->world != world || e->vmid != vmid || e->stage == 2) continue;
      if (e->global ? e->aset != aset : e->asid != asid) continue;
      if (page >= e->page && page < e->page + (double)(1u << e->size_log2)) return set * WAYS + w;
    }
  }
  return -1;
}

static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec * 1e-9; }

int main(void) {
  static int32_t vmid[N], asid[N]; static double page[N];
  int live[SETS * WAYS], nlive = 0;
  for (int i = 0; i < 4096; i++) {
    int block = rnd(10) == 0, k = block ? 9 : 0;
    double p = (double)((rnd(1 << 22) >> k) << k);
    fill(1 + rnd(8), 1 + rnd(16), p, k, rnd(20) == 0);
  }
  for (int i = 0; i < SETS * WAYS; i++) if (tlb[i].valid) live[nlive++] = i;
  for (int i = 0; i < N; i++) {
    if (rnd(10) < 8) { const entry_t *e = &tlb[live[rnd(nlive)]]; vmid[i] = e->vmid; asid[i] = e->global ? 1 + rnd(16) : e->asid; page[i] = e->page + rnd(1u << e->size_log2); }
    else { vmid[i] = 1 + rnd(8); asid[i] = 1 + rnd(16); page[i] = rnd(1 << 22); }
  }
  long long sum = 0, n = 0; double t0 = now(), t;
  do { for (int i = 0; i < 1 << 22; i++) { int j = i & (N - 1); sum += lookup(1, vmid[j], asid[j], 0, page[j]); } n += 1 << 22; t = now(); } while (t - t0 < 1.0);
  printf("{\"lookupsPerSec\": %.0f, \"sink\": %lld}\n", n / (t - t0), sum & 1);
  return 0;
}
