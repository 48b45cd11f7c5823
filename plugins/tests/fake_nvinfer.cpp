/* A fake libnvinfer for loader_tests: TensorRT's global registry and logger, as libflurka_trt_plugin_static.so
 * uses them when it is loaded. */
#include "fake_tensorrt.h"

extern "C" __attribute__((visibility("default"))) nvinfer1::IPluginRegistry* getPluginRegistry() noexcept
{
    static flurka_test::FakeRegistry sRegistry;
    return &sRegistry;
}

extern "C" __attribute__((visibility("default"))) nvinfer1::ILogger* getLogger() noexcept
{
    static flurka_test::TestLogger sLogger;
    return &sLogger;
}
