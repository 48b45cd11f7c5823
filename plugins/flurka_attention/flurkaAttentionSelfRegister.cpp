/*
 * Load-time registration of libflurka_trt_plugin_static.so, for loaders that only dlopen the library:
 * Polygraphy --plugins, trtexec --staticPlugins, ctypes.CDLL. It registers the creator in TensorRT's global
 * registry under the namespace the creator reports ("com.flurka"), which REGISTER_TENSORRT_PLUGIN would not do
 * (it registers under ""). Like libnvinfer_plugin it links libnvinfer, and it exports no getCreators: never give
 * this variant to IPluginRegistry::loadLibrary, and never load both variants into one process (the second
 * registration of the same creator fails).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "flurkaAttentionPlugin.h"

using namespace nvinfer1;

namespace flurka
{
namespace plugin
{
namespace
{

class SelfRegistration
{
public:
    SelfRegistration() noexcept
    {
        setFallbackLogger(::getLogger());
        mRegistry = ::getPluginRegistry();
        if (mRegistry == nullptr || !mRegistry->registerCreator(pluginCreator(), kPLUGIN_NAMESPACE))
        {
            mRegistry = nullptr;
            logMessage(ILogger::Severity::kERROR,
                "registering the creator failed: a FlurkaAttention creator is already registered (load only one of "
                "libflurka_trt_plugin.so and libflurka_trt_plugin_static.so, once)");
        }
    }

    ~SelfRegistration()
    {
        if (mRegistry != nullptr)
        {
            mRegistry->deregisterCreator(pluginCreator()); // the creator dies with this library
        }
        setFallbackLogger(nullptr);
    }

    SelfRegistration(SelfRegistration const&) = delete;
    SelfRegistration& operator=(SelfRegistration const&) = delete;

private:
    IPluginRegistry* mRegistry{nullptr};
};

SelfRegistration const gSelfRegistration;

} // namespace
} // namespace plugin
} // namespace flurka
