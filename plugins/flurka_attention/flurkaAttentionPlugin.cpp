/*
 * FlurkaAttention TensorRT plugin (IPluginV3): com.flurka::FlurkaAttention version 1.
 *
 * Computes docs/op-spec.md section 1 step 3 (kernel attention over the - possibly low-rank shortened - keys) by calling the
 * ahead-of-time compiled kernels through the launcher C API (flurka_attention_launch.h). Shapes:
 *   input 0 query [B, Nq, H*d], 1 key [B, Nk, H*d], 2 value [B, Nk, H*dv], 3 feature_proj [H, P, d] (rfa, favor)
 *   output 0 [B, Nq, H*dv]; all of one type T in {float32, float16, bfloat16}, linear format.
 *
 * The plugin's code, by job:
 *   flurkaAttentionPlugin.cpp   (this file) identity, clones, error reporting, the device check, the creator
 *   flurkaAttentionFields.cpp   fields: parse, validate, serialize; logging
 *   flurkaAttentionBuild.cpp    build phase: shape and type checks, output shapes, formats, workspace size
 *   flurkaAttentionRuntime.cpp  runtime phase: launcher parameters, shape changes, enqueue
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "flurkaAttentionInternal.h"

#include <cstdio>
#include <new>
#include <string>
#include <utility>

using namespace nvinfer1;

namespace flurka
{
namespace plugin
{

// ------------------------------------------------------------------------------------------------------------------
// FlurkaAttentionPlugin

FlurkaAttentionPlugin::FlurkaAttentionPlugin(std::string layerName, FlurkaAttentionAttrs attrs)
    : mLayerName(std::move(layerName))
    , mAttrs(std::move(attrs))
{
    char buf[160];
    std::snprintf(buf, sizeof(buf), "%s/%s/%s/H=%d/stabilizer=%a/eps=%a/nu=%d", kPLUGIN_NAME, kPLUGIN_VERSION,
        mAttrs.featureMap.c_str(), mAttrs.numHeads, static_cast<double>(mAttrs.stabilizer),
        static_cast<double>(mAttrs.eps), mAttrs.nu);
    mTimingCacheId = buf;
    mMetadata = "num_heads=" + std::to_string(mAttrs.numHeads) + " feature_map=" + mAttrs.featureMap
        + " stabilizer=" + floatToString(static_cast<double>(mAttrs.stabilizer))
        + " eps=" + floatToString(static_cast<double>(mAttrs.eps)) + " nu=" + std::to_string(mAttrs.nu);
}

int32_t FlurkaAttentionPlugin::fail(std::string const& message) const noexcept
{
    return fail(message.c_str());
}

int32_t FlurkaAttentionPlugin::fail(char const* message) const noexcept
{
    char full[1800];
    std::snprintf(full, sizeof(full), "node '%s': %s", mLayerName.c_str(), message);
    logMessage(ILogger::Severity::kERROR, static_cast<char const*>(full));
    return -1;
}

// Called in both phases: configurePlugin, supportsFormatCombination and onShapeChange. The first call loads the
// CUDA driver (the launcher opens libcuda.so.1 itself); without one, the launcher's reason is the error.
int32_t FlurkaAttentionPlugin::checkDevice() noexcept
{
    char const* const noDriver = flurka_attention_driver_error();
    int cc = 0;
    if (noDriver == nullptr && (flurka_attention_device_cc(&cc) != 0 || flurka_attention_device_supported(cc)))
    {
        return 0; // no current context (nothing to check yet), or a supported GPU
    }
    if (!mDeviceReported)
    {
        mDeviceReported = true;
        if (noDriver != nullptr)
        {
            fail(noDriver);
            return -1;
        }
        char message[1024];
        std::snprintf(message, sizeof(message),
            "this GPU has compute capability %d.%d, which the compiled kernels do not support (%s); rebuild the "
            "plugin with `flurka-export build-plugin --arch %d`",
            cc / 10, cc % 10, flurka_attention_build_info(), cc);
        fail(static_cast<char const*>(message));
    }
    return -1;
}

IPluginCapability* FlurkaAttentionPlugin::getCapabilityInterface(PluginCapabilityType type) noexcept
{
    switch (type)
    {
    case PluginCapabilityType::kCORE: return static_cast<IPluginV3OneCore*>(this);
    case PluginCapabilityType::kBUILD: return static_cast<IPluginV3OneBuild*>(this);
    case PluginCapabilityType::kRUNTIME: return static_cast<IPluginV3OneRuntime*>(this);
    }
    return nullptr;
}

IPluginV3* FlurkaAttentionPlugin::clone() noexcept
{
    try
    {
        return new FlurkaAttentionPlugin(*this);
    }
    catch (...)
    {
        fail("clone failed: out of memory");
        return nullptr;
    }
}

char const* FlurkaAttentionPlugin::getPluginName() const noexcept
{
    return kPLUGIN_NAME;
}

char const* FlurkaAttentionPlugin::getPluginVersion() const noexcept
{
    return kPLUGIN_VERSION;
}

char const* FlurkaAttentionPlugin::getPluginNamespace() const noexcept
{
    return kPLUGIN_NAMESPACE;
}

char const* FlurkaAttentionPlugin::getTimingCacheID() noexcept
{
    return mTimingCacheId.c_str();
}

char const* FlurkaAttentionPlugin::getMetadataString() noexcept
{
    return mMetadata.c_str();
}

// ------------------------------------------------------------------------------------------------------------------
// FlurkaAttentionPluginCreator

FlurkaAttentionPluginCreator::FlurkaAttentionPluginCreator() noexcept
{
    for (int32_t i = 0; i < kNB_FIELDS; ++i)
    {
        mFieldNames[i] = PluginField(kFIELDS[i].name, nullptr, kFIELDS[i].type, 1);
    }
    mFc.nbFields = kNB_FIELDS;
    mFc.fields = mFieldNames.data();
}

char const* FlurkaAttentionPluginCreator::getPluginName() const noexcept
{
    return kPLUGIN_NAME;
}

char const* FlurkaAttentionPluginCreator::getPluginVersion() const noexcept
{
    return kPLUGIN_VERSION;
}

char const* FlurkaAttentionPluginCreator::getPluginNamespace() const noexcept
{
    return kPLUGIN_NAMESPACE;
}

PluginFieldCollection const* FlurkaAttentionPluginCreator::getFieldNames() noexcept
{
    return &mFc;
}

IPluginV3* FlurkaAttentionPluginCreator::createPlugin(
    char const* name, PluginFieldCollection const* fc, TensorRTPhase /*phase*/) noexcept
{
    try
    {
        std::string const layerName = name != nullptr ? name : "";
        FlurkaAttentionAttrs attrs;
        std::string error;
        if (!parseFields(fc, attrs, error))
        {
            logMessage(ILogger::Severity::kERROR,
                "node '" + layerName + "': " + (error.empty() ? std::string("reading the fields failed") : error));
            return nullptr;
        }
        return new FlurkaAttentionPlugin(layerName, std::move(attrs));
    }
    catch (...)
    {
        logMessage(ILogger::Severity::kERROR, "createPlugin failed: out of memory");
        return nullptr;
    }
}

FlurkaAttentionPluginCreator& pluginCreator() noexcept
{
    static FlurkaAttentionPluginCreator sCreator; // noexcept constructor
    return sCreator;
}

} // namespace plugin
} // namespace flurka
