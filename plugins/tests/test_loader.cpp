/* The two real plugin libraries, loaded the way TensorRT's loaders load them (argv: the loadLibrary variant, the
 * self-registering variant), against the fake libnvinfer's global registry and the documented loadLibrary steps. */
#include "check.h"
#include "fake_tensorrt.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

using flurka_test::FakeRegistry;
using flurka_test::TestLogger;
using namespace nvinfer1;

namespace
{

FakeRegistry& globalRegistry()
{
    return *static_cast<FakeRegistry*>(getPluginRegistry());
}

//! createPlugin with a bad feature map must log an error through whichever logger the library was given.
void createBad(IPluginCreatorInterface* creator)
{
    char const fmap[] = "bogus";
    int32_t heads = 2;
    PluginField fields[] = {PluginField("num_heads", &heads, PluginFieldType::kINT32, 1),
        PluginField("feature_map", fmap, PluginFieldType::kCHAR, 6)};
    PluginFieldCollection fc{2, fields};
    CHECK(flurka_test::asV3(creator)->createPlugin("bad_node", &fc, TensorRTPhase::kBUILD) == nullptr);
}

void testDynamicVariant(char const* path)
{
    // Loaded by a registry (IPluginRegistry::loadLibrary, trtexec --dynamicPlugins, a plan's serialized library).
    TestLogger logger;
    flurka_test::TestLoggerFinder finder(&logger);
    FakeRegistry registry;
    registry.finder = &finder;
    void* handle = registry.loadLibrary(path);
    CHECK(handle != nullptr);
    CHECK(registry.entries.size() == 1);
    IPluginCreatorInterface* creator = registry.getCreator("FlurkaAttention", "1", "com.flurka");
    CHECK(creator != nullptr);
    CHECK(globalRegistry().entries.empty()); // loading registered nothing by itself
    if (creator != nullptr)
    {
        createBad(creator);
        CHECK(logger.saw(ILogger::Severity::kERROR, "node 'bad_node': field feature_map='bogus'"));
    }
    // A second load into the same registry is a duplicate, as TensorRT documents.
    CHECK(registry.loadLibrary(path) == nullptr && registry.entries.size() == 1);
    CHECK(handle != nullptr && dlsym(handle, "getCreators") != nullptr && dlsym(handle, "setLoggerFinder") != nullptr);
    // Only the two entry points are exported (the launcher's symbols stay inside).
    CHECK(handle != nullptr && dlsym(handle, "flurka_attention_launch") == nullptr);
    registry.finder = nullptr;
    registry.loadLibrary(path); // resets the library's logger finder to none
}

void testStaticVariant(char const* path, char const* dynamicPath)
{
    // Loaded by dlopen only (Polygraphy --plugins, trtexec --staticPlugins, ctypes): registers itself.
    CHECK(globalRegistry().entries.empty());
    void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr)
    {
        std::printf("dlopen(%s) failed: %s\n", path, dlerror());
    }
    CHECK(handle != nullptr);
    CHECK(globalRegistry().entries.size() == 1);
    IPluginCreatorInterface* creator = globalRegistry().getCreator("FlurkaAttention", "1", "com.flurka");
    CHECK(creator != nullptr); // under the namespace the creator reports, not ""
    CHECK(globalRegistry().getCreator("FlurkaAttention", "1", "") == nullptr);
    CHECK(handle != nullptr && dlsym(handle, "getCreators") == nullptr);
    auto& logger = *static_cast<TestLogger*>(getLogger());
    if (creator != nullptr)
    {
        createBad(creator);
        CHECK(logger.saw(ILogger::Severity::kERROR, "field feature_map='bogus'")); // TensorRT's global logger
    }
    // Not a library for loadLibrary (no getCreators), and loading the other variant too is a duplicate.
    FakeRegistry registry;
    CHECK(registry.loadLibrary(path) == nullptr);
    CHECK(globalRegistry().loadLibrary(dynamicPath) == nullptr);
    CHECK(globalRegistry().entries.size() == 1);
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 3)
    {
        std::printf("usage: loader_tests libflurka_trt_plugin.so libflurka_trt_plugin_static.so\n");
        return 2;
    }
    testDynamicVariant(argv[1]);
    testStaticVariant(argv[2], argv[1]);
    // Neither library links the driver: loading them did not load it (the launcher opens it on first use).
    char const* driver = std::getenv("FLURKA_CUDA_DRIVER_LIBRARY");
    CHECK(driver != nullptr && dlopen(driver, RTLD_NOW | RTLD_NOLOAD) == nullptr);
    return flurka_test::finish("loader_tests");
}
