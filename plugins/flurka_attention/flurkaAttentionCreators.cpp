/*
 * Entry points of libflurka_trt_plugin.so, the library that TensorRT's plugin registry loads itself:
 * IPluginRegistry::loadLibrary (Python: registry.load_library), trtexec --dynamicPlugins, and plugin libraries
 * serialized into a plan (version-compatible engines, the lean runtime). The registry calls getCreators and
 * registers each creator itself, so this library registers nothing when it is loaded, and it calls no TensorRT
 * function (it does not link libnvinfer).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "flurkaAttentionPlugin.h"

using namespace nvinfer1;

extern "C" FLURKA_PLUGIN_EXPORT IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) noexcept
{
    static IPluginCreatorInterface* const sCreators[] = {&flurka::plugin::pluginCreator()};
    nbCreators = 1;
    return sCreators;
}

extern "C" FLURKA_PLUGIN_EXPORT void setLoggerFinder(ILoggerFinder* finder) noexcept
{
    flurka::plugin::setLoggerFinderImpl(finder);
}
