/* A fake CUDA driver (libcuda.so.1 for the tests): records module loads and kernel launches so that the real
 * generated launcher can be tested without a GPU. Fake kernel images are strings "FAKE:<name>:<sig>:<tag>" where
 * <sig> has one letter per kernel parameter (p = 8-byte pointer, i = int32, f = float32). */
#ifndef FLURKA_FAKE_CUDA_H
#define FLURKA_FAKE_CUDA_H

#include <cuda.h>

#include <cstdint>
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

extern "C" FakeCudaState* fake_cuda_state();
extern "C" void fake_cuda_reset();

#endif
