/* The generated launcher (flurka_attention_launch.c + a table of fake images) against the fake CUDA driver:
 * image choice by compute capability, module loading and its cache, argument marshalling, grids, scratch
 * pointers, the shared-memory opt-in, and the error paths. Needs cuda.h only (no TensorRT). */
#include "check.h"
#include "fake_cuda.h"
#include "flurka_attention_launch.h"

#include <cstdint>
#include <cstring>
#include <string>

namespace
{

FakeCudaState& st()
{
    return *fake_cuda_state();
}

// From the generated API: per feature map, its name and whether it reads feature_proj.
char const* const kMapNames[] = FLURKA_FMAP_NAMES;
int const kNeedsProj[] = FLURKA_FMAP_NEEDS_FEATURE_PROJ;

flurka_attention_params_t params(flurka_feature_map_t fmap, flurka_dtype_t dtype, int dv = 64)
{
    flurka_attention_params_t p;
    std::memset(&p, 0, sizeof(p));
    p.batch = 2;
    p.num_heads = 3;
    p.q_len = 300;
    p.kv_len = 40;
    p.head_dim = 64;
    p.value_dim = dv;
    p.num_proj = kNeedsProj[fmap] ? 100 : 0;
    p.dtype = dtype;
    p.feature_map = fmap;
    p.stabilizer = 0.25F;
    p.eps = 0.5F;
    p.nu = 1;
    return p;
}

bool contains(std::string const& s, char const* part)
{
    return s.find(part) != std::string::npos;
}

// Fake device pointers: 16-byte aligned, never dereferenced by the launcher.
uintptr_t const Q = 0x10000, K = 0x20000, V = 0x30000, W = 0x40000, O = 0x50000, WS = 0x100000;
void const* ptr(uintptr_t p)
{
    return reinterpret_cast<void const*>(p);
}

int launch(flurka_attention_params_t const& p, size_t wsSize = 1u << 30, uintptr_t q = Q)
{
    return flurka_attention_launch(&p, ptr(q), ptr(K), ptr(V), kNeedsProj[p.feature_map] ? ptr(W) : nullptr, reinterpret_cast<void*>(O),
        reinterpret_cast<void*>(WS), wsSize, reinterpret_cast<CUstream>(0x77));
}

size_t align256(size_t x)
{
    return (x + 255) & ~size_t{255};
}

void testDeviceSelection()
{
    struct Case
    {
        int cc;
        bool supported;
        char const* image;
    };
    Case const cases[] = {{75, false, ""}, {80, true, ":sm80:"}, {86, true, ":sm80:"}, {87, true, ":sm80:"},
        {89, true, ":sm89:"}, {90, true, ":sm90:"}, {100, true, ":ptx89:"}, {103, true, ":ptx89:"},
        {120, true, ":ptx89:"}};
    unsigned long long id = 100;
    for (Case const& c : cases)
    {
        fake_cuda_reset();
        st().cc = c.cc;
        st().contextId = ++id; // a fresh context each time: nothing cached
        int cc = 0;
        CHECK(flurka_attention_device_cc(&cc) == 0 && cc == c.cc);
        CHECK(flurka_attention_device_supported(c.cc) == (c.supported ? 1 : 0));
        auto p = params(FLURKA_FMAP_RELU, FLURKA_DTYPE_FP16);
        int const rc = launch(p);
        if (!c.supported)
        {
            CHECK(rc == FLURKA_ERR_DEVICE);
            CHECK(st().launches.empty() && st().loadedImages.empty());
            CHECK(flurka_attention_prepare(&p) == FLURKA_ERR_DEVICE);
            continue;
        }
        CHECK(rc == FLURKA_OK);
        CHECK(st().launches.size() == 2);
        for (auto const& l : st().launches)
        {
            CHECK(contains(l.image, c.image));
        }
    }
    // No sm_90a-style arch-specific image is chosen for a different device; info names archs and the driver.
    std::string const info = flurka_attention_build_info();
    CHECK(contains(info, "sm_80") && contains(info, "PTX for sm_89") && contains(info, "575"));
    fake_cuda_reset();
    st().hasContext = false;
    int cc = 0;
    CHECK(flurka_attention_device_cc(&cc) == FLURKA_ERR_NO_CONTEXT);
    auto p = params(FLURKA_FMAP_RELU, FLURKA_DTYPE_FP16);
    CHECK(launch(p) == FLURKA_ERR_NO_CONTEXT);
    CHECK(flurka_attention_supported(&p) == 1); // build time, no context: any device
}

void testMarshalling()
{
    fake_cuda_reset();
    st().contextId = 500;
    // favor, fp32: key max, kv_state, query_out with a 64 KB shared-memory query kernel.
    auto p = params(FLURKA_FMAP_FAVOR, FLURKA_DTYPE_FP32, 32);
    size_t const bh = 6, m = 100, dv = 32;
    size_t const zOff = align256(bh * m * dv * 4), cOff = zOff + align256(bh * m * 4), total = cOff + align256(bh * 4);
    CHECK(flurka_attention_workspace_size(&p) == total);
    CHECK(launch(p, total - 1) == FLURKA_ERR_WORKSPACE);
    CHECK(st().launches.empty());
    CHECK(launch(p, total, Q + 8) == FLURKA_ERR_MISALIGNED);
    CHECK(launch(p, total) == FLURKA_OK);
    CHECK(st().launches.size() == 3);
    if (st().launches.size() != 3)
    {
        return;
    }
    auto const& km = st().launches[0];
    auto const& kv = st().launches[1];
    auto const& qo = st().launches[2];
    CHECK(contains(km.image, "FAKE:favor_key_max:") && contains(kv.image, "FAKE:kv_state:")
        && contains(qo.image, "FAKE:query_out:"));
    // favor_key_max(k, w, c, H, Nk, P, scratch x2), grid (B*H, 1)
    CHECK(km.grid[0] == bh && km.grid[1] == 1 && km.grid[2] == 1);
    CHECK(km.params.size() == 8);
    CHECK(km.params[0].ptr == K && km.params[1].ptr == W && km.params[2].ptr == WS + cOff);
    CHECK(km.params[3].i == 3 && km.params[4].i == 40 && km.params[5].i == 100);
    CHECK(km.params[6].ptr == 0 && km.params[7].ptr == 0);
    // kv_state(k, v, w, c, s, z, H, Nk, P, stabilizer, scratch x2), grid (B*H, ceil(P / BLOCK_F)); fp32 BLOCK_F=32
    CHECK(kv.grid[0] == bh && kv.grid[1] == 4);
    CHECK(kv.params.size() == 12);
    CHECK(kv.params[0].ptr == K && kv.params[1].ptr == V && kv.params[2].ptr == W && kv.params[3].ptr == WS + cOff);
    CHECK(kv.params[4].ptr == WS && kv.params[5].ptr == WS + zOff);
    CHECK(kv.params[6].i == 3 && kv.params[7].i == 40 && kv.params[8].i == 100 && kv.params[9].f == 0.25F);
    CHECK(kv.params[10].ptr == 0 && kv.params[11].ptr == 0);
    // query_out(q, w, s, z, o, H, Nq, P, stabilizer, eps, scratch x2), grid (ceil(Nq / BLOCK_N), B*H); fp32 BLOCK_N=32
    CHECK(qo.grid[0] == 10 && qo.grid[1] == bh);
    CHECK(qo.params.size() == 12);
    CHECK(qo.params[0].ptr == Q && qo.params[1].ptr == W && qo.params[2].ptr == WS && qo.params[3].ptr == WS + zOff);
    CHECK(qo.params[4].ptr == O && qo.params[5].i == 3 && qo.params[6].i == 300 && qo.params[7].i == 100);
    CHECK(qo.params[8].f == 0.25F && qo.params[9].f == 0.5F);
    CHECK(qo.params[10].ptr == 0 && qo.params[11].ptr == 0);
    for (auto const& l : st().launches)
    {
        CHECK(l.block[0] == 128 && l.block[1] == 1 && l.block[2] == 1); // 4 warps
        CHECK(l.stream == reinterpret_cast<CUstream>(0x77));
    }
    CHECK(qo.shared == 65536 && kv.shared == 16384);
    // Only the kernel above 48 KB opts in, with its exact size.
    CHECK(st().sharedOptIns.size() == 1);
    CHECK(st().sharedOptIns.size() == 1 && contains(st().sharedOptIns[0].first, "query_out")
        && st().sharedOptIns[0].second == 65536);
    // relu/elu: no feature_proj (w = q), P = 1, one feature tile; fp16 query tiles of 128 rows.
    fake_cuda_reset();
    st().contextId = 501;
    auto r = params(FLURKA_FMAP_RELU, FLURKA_DTYPE_FP16);
    CHECK(launch(r) == FLURKA_OK && st().launches.size() == 2);
    if (st().launches.size() == 2)
    {
        CHECK(st().launches[0].grid[1] == 1 && st().launches[0].params[2].ptr == Q && st().launches[0].params[8].i == 1);
        CHECK(st().launches[1].grid[0] == 3); // ceil(300 / 128)
    }
}

void testCacheAndPrepare()
{
    fake_cuda_reset();
    st().contextId = 900;
    auto p = params(FLURKA_FMAP_ELU, FLURKA_DTYPE_FP16);
    CHECK(flurka_attention_prepare(&p) == FLURKA_OK);
    CHECK(st().loadedImages.size() == 2 && st().launches.empty());
    CHECK(launch(p) == FLURKA_OK && launch(p) == FLURKA_OK);
    CHECK(st().loadedImages.size() == 2 && st().launches.size() == 4); // no load at launch after prepare
    // The same CUcontext handle with a new context ID (destroyed and re-created): modules are loaded again.
    st().contextId = 901;
    CHECK(launch(p) == FLURKA_OK);
    CHECK(st().loadedImages.size() == 4);
    // Load failure: reported with the driver's code, nothing cached, the module count unchanged.
    st().contextId = 902;
    st().loadResult = CUDA_ERROR_OUT_OF_MEMORY;
    int const rc = flurka_attention_prepare(&p);
    CHECK(rc == FLURKA_ERR_CUDA_BASE + CUDA_ERROR_OUT_OF_MEMORY);
    CHECK(std::string(flurka_attention_error_string(rc)) == "fake: out of memory");
    st().loadResult = CUDA_SUCCESS;
    CHECK(flurka_attention_prepare(&p) == FLURKA_OK && st().loadedImages.size() == 6);
    st().launchResult = CUDA_ERROR_LAUNCH_FAILED;
    CHECK(launch(p) == FLURKA_ERR_CUDA_BASE + CUDA_ERROR_LAUNCH_FAILED);
}

void testEdgeCases()
{
    fake_cuda_reset();
    st().contextId = 1200;
    auto p = params(FLURKA_FMAP_RFA, FLURKA_DTYPE_FP16);
    p.batch = 0; // empty batch: nothing to do, no launch, no module load
    CHECK(launch(p) == FLURKA_OK && st().launches.empty() && st().loadedImages.empty());
    p.batch = 2;
    p.q_len = 0;
    CHECK(launch(p) == FLURKA_OK && st().launches.empty());
    p.q_len = 5;
    p.kv_len = 0; // an empty key sequence is refused
    CHECK(launch(p) == FLURKA_ERR_INVALID_ARGUMENT && flurka_attention_supported(&p) == 0);
    CHECK(contains(flurka_attention_error_string(FLURKA_ERR_INVALID_ARGUMENT), "kv_len < 1"));
    p.kv_len = 4;
    p.num_proj = 0;
    CHECK(launch(p) == FLURKA_ERR_INVALID_ARGUMENT);
    p.num_proj = 8;
    p.head_dim = 48;
    CHECK(launch(p) == FLURKA_ERR_UNSUPPORTED && flurka_attention_supported(&p) == 0);
    p.head_dim = 128; // not in this table (d = 64 only)
    CHECK(flurka_attention_supported(&p) == 0 && launch(p) == FLURKA_ERR_UNSUPPORTED);
    p.head_dim = 64;
    p.dtype = FLURKA_DTYPE_BF16; // not in this table
    CHECK(flurka_attention_supported(&p) == 0);
    p.dtype = FLURKA_DTYPE_FP16;
    p.batch = 30000; // batch * heads > 65535
    CHECK(launch(p) == FLURKA_ERR_TOO_LARGE && flurka_attention_workspace_size(&p) == 0);
    p.batch = 2;
    CHECK(flurka_attention_launch(&p, nullptr, ptr(K), ptr(V), ptr(W), reinterpret_cast<void*>(O),
              reinterpret_cast<void*>(WS), 1u << 30, nullptr)
        == FLURKA_ERR_INVALID_ARGUMENT);
    CHECK(launch(p) == FLURKA_OK && st().launches.size() == 2);
    CHECK(flurka_attention_launch(nullptr, ptr(Q), ptr(K), ptr(V), ptr(W), nullptr, nullptr, 0, nullptr)
        == FLURKA_ERR_INVALID_ARGUMENT);
    CHECK(flurka_attention_device_cc(nullptr) == FLURKA_ERR_INVALID_ARGUMENT);
    CHECK(std::string(flurka_attention_error_string(12345)) == "unknown error"
        || contains(flurka_attention_error_string(12345), "driver"));
}

// Every registered feature map (the generated enum, so a new map is covered without an edit here) is supported
// and launches the kv_state and query_out images built for it.
void testEveryFeatureMap()
{
    for (int f = 0; f < FLURKA_FMAP_COUNT; ++f)
    {
        fake_cuda_reset();
        st().contextId = 1300 + static_cast<unsigned long long>(f);
        auto p = params(static_cast<flurka_feature_map_t>(f), FLURKA_DTYPE_FP16);
        std::string const tag = std::string(":") + kMapNames[f] + "/fp16/64/64";
        CHECK(flurka_attention_supported(&p) == 1);
        CHECK(launch(p) == FLURKA_OK && st().launches.size() >= 2);
        bool kv = false;
        bool qo = false;
        for (auto const& l : st().launches)
        {
            kv = kv || (contains(l.image, "FAKE:kv_state:") && contains(l.image, tag.c_str()));
            qo = qo || (contains(l.image, "FAKE:query_out:") && contains(l.image, tag.c_str()));
        }
        CHECK(kv && qo);
    }
}

} // namespace

// test_driver.cpp: how the launcher loads the driver, and the runs without one.
void testDriverLookups();
void testNoDriver();
void testOldDriver();

int main(int argc, char** argv)
{
    std::string const mode = argc > 1 ? argv[1] : "";
    if (mode == "--no-driver")
    {
        testNoDriver();
        return flurka_test::finish("launcher_no_driver_tests");
    }
    if (mode == "--old-driver")
    {
        testOldDriver();
        return flurka_test::finish("launcher_old_driver_tests");
    }
    testDeviceSelection();
    testMarshalling();
    testCacheAndPrepare();
    testEdgeCases();
    testEveryFeatureMap();
    testDriverLookups();
    return flurka_test::finish("launcher_tests");
}
