/* How the generated launcher reaches the CUDA driver: it links no libcuda, opens the driver library on first use
 * (FLURKA_CUDA_DRIVER_LIBRARY points it at the fake one here) and takes each entry point from cuGetProcAddress_v2.
 * Run three ways (tests/CMakeLists.txt): with the fake driver, with no driver file, with a driver that lacks
 * cuCtxGetId (older than CUDA 12.0). Without a driver every call that needs one fails with FLURKA_ERR_NO_DRIVER and
 * one message that names the library and says a NVIDIA driver is needed. */
#include "check.h"
#include "fake_cuda.h"
#include "flurka_attention_launch.h"

#include <cstdint>
#include <cstring>
#include <set>
#include <string>

namespace
{

bool contains(char const* s, char const* part)
{
    return s != nullptr && std::strstr(s, part) != nullptr;
}

flurka_attention_params_t reluParams()
{
    flurka_attention_params_t p;
    std::memset(&p, 0, sizeof(p));
    p.batch = 1;
    p.num_heads = 2;
    p.q_len = 8;
    p.kv_len = 4;
    p.head_dim = 64;
    p.value_dim = 64;
    p.dtype = FLURKA_DTYPE_FP16;
    p.feature_map = FLURKA_FMAP_RELU;
    p.stabilizer = 0.25F;
    p.eps = 0.5F;
    p.nu = 1;
    return p;
}

//! Every call that needs the driver fails with FLURKA_ERR_NO_DRIVER; the message is `why`, also from error_string.
void checkNoDriver(char const* what)
{
    flurka_attention_params_t const p = reluParams();
    int cc = 0;
    CHECK(flurka_attention_device_cc(&cc) == FLURKA_ERR_NO_DRIVER);
    CHECK(flurka_attention_prepare(&p) == FLURKA_ERR_NO_DRIVER);
    auto* dev = reinterpret_cast<void*>(uintptr_t{0x10000});
    CHECK(flurka_attention_launch(&p, dev, dev, dev, nullptr, dev, dev, 1u << 20, nullptr) == FLURKA_ERR_NO_DRIVER);
    CHECK(flurka_attention_supported(&p) == 1); // no device known: some image fits (as without a context)
    char const* why = flurka_attention_driver_error();
    CHECK(contains(why, what) && contains(why, "libcuda.so.1") && contains(why, "NVIDIA driver"));
    CHECK(why != nullptr && std::strcmp(flurka_attention_error_string(FLURKA_ERR_NO_DRIVER), why) == 0);
    CHECK(contains(flurka_attention_error_string(FLURKA_ERR_CUDA_BASE + 2), "CUDA driver error"));
    if (why != nullptr)
    {
        std::printf("no driver: %s\n", why);
    }
}

} // namespace

//! After the other launcher tests: the driver was opened once, each entry point looked up once by name, at the
//! CUDA 12.0 ABI and with the legacy default stream (as a plain link to libcuda would bind them).
void testDriverLookups()
{
    CHECK(flurka_attention_driver_error() == nullptr);
    auto const& lookups = fake_cuda_lookups();
    std::set<std::string> names;
    for (FakeLookup const& l : lookups)
    {
        names.insert(l.name);
        CHECK(l.version == 12000 && l.flags == CU_GET_PROC_ADDRESS_LEGACY_STREAM);
    }
    CHECK(lookups.size() == 10 && names.size() == 10);
    for (char const* name : {"cuCtxGetCurrent", "cuCtxGetId", "cuModuleLoadData", "cuLaunchKernel", "cuGetErrorString"})
    {
        CHECK(names.count(name) == 1);
    }
    CHECK(std::strcmp(flurka_attention_error_string(FLURKA_ERR_CUDA_BASE + CUDA_ERROR_OUT_OF_MEMORY),
              "fake: out of memory") == 0);
}

//! FLURKA_CUDA_DRIVER_LIBRARY names a file that does not exist (a machine without the NVIDIA driver).
void testNoDriver()
{
    checkNoDriver("cannot load the CUDA driver library");
    CHECK(contains(flurka_attention_driver_error(), "no-driver/libcuda.so.1")); // and dlerror's reason
    CHECK(contains(flurka_attention_driver_error(), "cannot open shared object file"));
}

//! The fake driver without cuCtxGetId (FAKE_CUDA_HIDE): the lookup stops there and names it.
void testOldDriver()
{
    checkNoDriver("has no cuCtxGetId");
    CHECK(contains(flurka_attention_driver_error(), "CUDA 12.0 or newer"));
    CHECK(!fake_cuda_lookups().empty() && fake_cuda_lookups().back().name == "cuCtxGetId");
    CHECK(fake_cuda_state()->loadedImages.empty() && fake_cuda_state()->launches.empty());
}
