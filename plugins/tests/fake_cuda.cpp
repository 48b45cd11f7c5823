/* Fake CUDA driver for the host-side tests (see fake_cuda.h). */
#define FAKE_CUDA_IMPL
#include "fake_cuda.h"

#include <cstdlib>
#include <cstring>
#include <memory>

namespace
{
struct FakeModule
{
    std::string image;
    std::string name;
    std::string sig;
};

FakeCudaState gState;
std::vector<FakeLookup> gLookups; // not reset: the launcher looks its entry points up once
std::vector<std::unique_ptr<FakeModule>> gModules;
} // namespace

extern "C" __attribute__((visibility("default"))) FakeCudaState* fake_cuda_state()
{
    return &gState;
}

extern "C" __attribute__((visibility("default"))) void fake_cuda_reset()
{
    gState = FakeCudaState{};
}

extern "C" __attribute__((visibility("default"))) std::vector<FakeLookup> const* fake_cuda_lookups()
{
    return &gLookups;
}

extern "C" {

CUresult CUDAAPI cuCtxGetCurrent(CUcontext* ctx)
{
    *ctx = gState.hasContext ? reinterpret_cast<CUcontext>(gState.contextHandle) : nullptr;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetId(CUcontext ctx, unsigned long long* id)
{
    if (ctx == nullptr || reinterpret_cast<uintptr_t>(ctx) != gState.contextHandle)
    {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    *id = gState.contextId;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetDevice(CUdevice* dev)
{
    *dev = 0;
    return gState.hasContext ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

CUresult CUDAAPI cuDeviceGetAttribute(int* value, CUdevice_attribute attr, CUdevice /*dev*/)
{
    if (attr == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)
    {
        *value = gState.cc / 10;
    }
    else if (attr == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)
    {
        *value = gState.cc % 10;
    }
    else
    {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuModuleLoadData(CUmodule* module, void const* image)
{
    if (gState.loadResult != CUDA_SUCCESS)
    {
        return gState.loadResult;
    }
    std::string const text(static_cast<char const*>(image));
    if (text.compare(0, 5, "FAKE:") != 0)
    {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    auto m = std::make_unique<FakeModule>();
    m->image = text;
    size_t const a = text.find(':', 5);
    size_t const b = text.find(':', a + 1);
    m->name = text.substr(5, a - 5);
    m->sig = text.substr(a + 1, b - a - 1);
    gState.loadedImages.push_back(text);
    *module = reinterpret_cast<CUmodule>(m.get());
    gModules.push_back(std::move(m));
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuModuleGetFunction(CUfunction* function, CUmodule module, char const* name)
{
    auto* m = reinterpret_cast<FakeModule*>(module);
    if (m->name != name)
    {
        return CUDA_ERROR_NOT_FOUND;
    }
    *function = reinterpret_cast<CUfunction>(m);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuModuleUnload(CUmodule /*module*/)
{
    ++gState.unloads;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuFuncSetAttribute(CUfunction function, CUfunction_attribute attr, int value)
{
    if (attr != CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES)
    {
        return CUDA_ERROR_INVALID_VALUE;
    }
    gState.sharedOptIns.emplace_back(reinterpret_cast<FakeModule*>(function)->image, value);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
    unsigned bz, unsigned shared, CUstream stream, void** params, void** extra)
{
    if (gState.launchResult != CUDA_SUCCESS)
    {
        return gState.launchResult;
    }
    if (extra != nullptr)
    {
        return CUDA_ERROR_INVALID_VALUE;
    }
    auto* m = reinterpret_cast<FakeModule*>(f);
    FakeLaunch launch{m->image, {gx, gy, gz}, {bx, by, bz}, shared, stream, {}};
    for (size_t i = 0; i < m->sig.size(); ++i) // read each parameter with exactly its size (ASan checks it)
    {
        FakeParam p{m->sig[i], 0, 0, 0.0F};
        if (p.type == 'p')
            std::memcpy(&p.ptr, params[i], sizeof(p.ptr));
        else if (p.type == 'i')
            std::memcpy(&p.i, params[i], sizeof(p.i));
        else
            std::memcpy(&p.f, params[i], sizeof(p.f));
        launch.params.push_back(p);
    }
    gState.launches.push_back(launch);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGetErrorString(CUresult error, char const** str)
{
    *str = error == CUDA_ERROR_OUT_OF_MEMORY ? "fake: out of memory" : "fake: driver error";
    return CUDA_SUCCESS;
}

// Entry points by name, as the real driver's cuGetProcAddress_v2 (CUDA 12.0+) hands them out.
CUresult CUDAAPI cuGetProcAddress_v2(
    char const* symbol, void** pfn, int version, cuuint64_t flags, CUdriverProcAddressQueryResult* status)
{
    struct Entry
    {
        char const* name;
        void* fn;
    };
    static Entry const entries[] = {{"cuCtxGetCurrent", reinterpret_cast<void*>(&cuCtxGetCurrent)},
        {"cuCtxGetId", reinterpret_cast<void*>(&cuCtxGetId)}, {"cuCtxGetDevice", reinterpret_cast<void*>(&cuCtxGetDevice)},
        {"cuDeviceGetAttribute", reinterpret_cast<void*>(&cuDeviceGetAttribute)},
        {"cuModuleLoadData", reinterpret_cast<void*>(&cuModuleLoadData)},
        {"cuModuleGetFunction", reinterpret_cast<void*>(&cuModuleGetFunction)},
        {"cuModuleUnload", reinterpret_cast<void*>(&cuModuleUnload)},
        {"cuFuncSetAttribute", reinterpret_cast<void*>(&cuFuncSetAttribute)},
        {"cuLaunchKernel", reinterpret_cast<void*>(&cuLaunchKernel)},
        {"cuGetErrorString", reinterpret_cast<void*>(&cuGetErrorString)}};
    gLookups.push_back(FakeLookup{symbol, version, static_cast<unsigned long long>(flags)});
    char const* hidden = std::getenv("FAKE_CUDA_HIDE");
    *pfn = nullptr;
    *status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    for (Entry const& e : entries)
    {
        if (std::strcmp(e.name, symbol) == 0 && (hidden == nullptr || std::strcmp(hidden, symbol) != 0))
        {
            *pfn = e.fn;
            *status = CU_GET_PROC_ADDRESS_SUCCESS;
        }
    }
    return *pfn != nullptr ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

} // extern "C"
