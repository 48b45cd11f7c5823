/* A fake CUDA driver (libcuda.so.1 for the tests): records module loads and kernel launches so that the real
 * generated launcher can be tested without a GPU. Fake kernel images are strings "FAKE:<name>:<sig>:<tag>" where
 * <sig> has one letter per kernel parameter (p = 8-byte pointer, i = int32, f = float32).
 *
 * Nothing links it: the launcher opens it the way it opens the real driver (dlopen, then cuGetProcAddress_v2),
 * pointed at it by FLURKA_CUDA_DRIVER_LIBRARY, and the tests reach its state the same way (fake_cuda_state below).
 * FAKE_CUDA_HIDE=<name> makes its cuGetProcAddress_v2 report that entry point missing (an old driver). */
#ifndef FLURKA_FAKE_CUDA_H
#define FLURKA_FAKE_CUDA_H

#include <cuda.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

struct FakeParam
{
    char type;
    uint64_t ptr;
    int32_t i;
    float f;
};

struct FakeLaunch
{
    std::string image; // the module's image string
    unsigned grid[3];
    unsigned block[3];
    unsigned shared;
    CUstream stream;
    std::vector<FakeParam> params;
};

struct FakeCudaState
{
    bool hasContext{true};
    uintptr_t contextHandle{0x1000};
    unsigned long long contextId{1};
    int cc{90};
    CUresult loadResult{CUDA_SUCCESS};
    CUresult launchResult{CUDA_SUCCESS};
    std::vector<std::string> loadedImages; // every cuModuleLoadData, in order
    int unloads{0};
    std::vector<std::pair<std::string, int>> sharedOptIns; // (image, bytes)
    std::vector<FakeLaunch> launches;
};

//! One cuGetProcAddress_v2 call: the entry point asked for, the ABI version and the flags.
struct FakeLookup
{
    std::string name;
    int version;
    unsigned long long flags;
};

#ifdef FAKE_CUDA_IMPL
extern "C" FakeCudaState* fake_cuda_state();
extern "C" void fake_cuda_reset();
extern "C" std::vector<FakeLookup> const* fake_cuda_lookups();
#else
#include <dlfcn.h>

//! The fake driver's exported function `name`, from the library FLURKA_CUDA_DRIVER_LIBRARY names (the one the
//! launcher loads: the same file is the same loaded object, so both see one state).
inline void* fakeCudaSymbol(char const* name)
{
    static void* const lib = [] {
        char const* path = std::getenv("FLURKA_CUDA_DRIVER_LIBRARY");
        void* h = path != nullptr ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : nullptr;
        if (h == nullptr)
        {
            std::printf("FLURKA_CUDA_DRIVER_LIBRARY must name the fake libcuda.so.1 (%s)\n", path ? dlerror() : "unset");
            std::abort();
        }
        return h;
    }();
    void* sym = dlsym(lib, name);
    if (sym == nullptr)
    {
        std::printf("the fake driver has no %s\n", name);
        std::abort();
    }
    return sym;
}

inline FakeCudaState* fake_cuda_state()
{
    return reinterpret_cast<FakeCudaState* (*)()>(fakeCudaSymbol("fake_cuda_state"))();
}

inline void fake_cuda_reset()
{
    reinterpret_cast<void (*)()>(fakeCudaSymbol("fake_cuda_reset"))();
}

inline std::vector<FakeLookup> const& fake_cuda_lookups()
{
    return *reinterpret_cast<std::vector<FakeLookup> const* (*)()>(fakeCudaSymbol("fake_cuda_lookups"))();
}
#endif

#endif
