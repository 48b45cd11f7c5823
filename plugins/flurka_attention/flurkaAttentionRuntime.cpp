/*
 * FlurkaAttention plugin, runtime phase (IPluginV3OneRuntime): launcher parameters, shape changes (which load the
 * kernels), enqueue, and the per-context copies.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "flurkaAttentionInternal.h"

#include <climits>
#include <cstring>
#include <string>

using namespace nvinfer1;

namespace flurka
{
namespace plugin
{

// Used by the build phase too (configurePlugin, getWorkspaceSize), for the profile's maximum shapes.
bool FlurkaAttentionPlugin::makeParams(Dims const* dims, int32_t nbInputs, DataType type,
    flurka_attention_params_t& params, std::string& error) const noexcept
{
    try
    {
        auto toInt = [&](int64_t value, char const* what, int& out) {
            if (value < 0 || value > INT_MAX)
            {
                error = std::string(what) + "=" + std::to_string(value) + " is outside the kernels' range 0.."
                    + std::to_string(INT_MAX);
                return false;
            }
            out = static_cast<int>(value);
            return true;
        };
        int64_t const h = mAttrs.numHeads;
        std::memset(&params, 0, sizeof(params));
        params.num_heads = mAttrs.numHeads;
        bool ok = toInt(dims[0].d[0], "batch", params.batch) && toInt(dims[0].d[1], "query length", params.q_len)
            && toInt(dims[1].d[1], "key length", params.kv_len) && toInt(dims[0].d[2] / h, "head_dim", params.head_dim)
            && toInt(dims[2].d[2] / h, "value head_dim", params.value_dim);
        if (!ok)
        {
            return false;
        }
        params.num_proj = 0;
        if (mAttrs.needsFeatureProj() && nbInputs > 3 && !toInt(dims[3].d[1], "num_proj", params.num_proj))
        {
            return false;
        }
        switch (type)
        {
        case DataType::kFLOAT: params.dtype = FLURKA_DTYPE_FP32; break;
        case DataType::kHALF: params.dtype = FLURKA_DTYPE_FP16; break;
        case DataType::kBF16: params.dtype = FLURKA_DTYPE_BF16; break;
        default: error = std::string("type ") + dataTypeName(type) + " is not float32, float16 or bfloat16"; return false;
        }
        params.feature_map = mAttrs.featureMapId;
        params.stabilizer = mAttrs.stabilizer;
        params.eps = mAttrs.eps;
        params.nu = mAttrs.nu;
        return true;
    }
    catch (...)
    {
        try
        {
            error = "out of memory"; // fits the small-string buffer: no allocation
        }
        catch (...)
        {
        }
        return false;
    }
}

int32_t FlurkaAttentionPlugin::onShapeChange(
    PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept
{
    try
    {
        return shapeChange(in, nbInputs, nbOutputs);
    }
    catch (...)
    {
        return fail("onShapeChange failed: out of memory");
    }
}

int32_t FlurkaAttentionPlugin::shapeChange(PluginTensorDesc const* in, int32_t nbInputs, int32_t nbOutputs)
{
    if (int32_t const rc = checkCounts(nbInputs, nbOutputs))
    {
        return rc;
    }
    Dims dims[4];
    for (int32_t i = 0; i < nbInputs; ++i)
    {
        dims[i] = in[i].dims;
    }
    if (checkShapes(dims, nbInputs) != 0)
    {
        return -1;
    }
    if (dims[1].d[1] == 0)
    {
        return fail(emptyKeysMessage(dims[1]));
    }
    if (checkDevice() != 0)
    {
        return -1;
    }
    flurka_attention_params_t params;
    std::string error;
    if (!makeParams(dims, nbInputs, in[0].type, params, error))
    {
        return fail(error);
    }
    if (!flurka_attention_supported(&params))
    {
        return fail(std::string("the compiled kernels do not support query ") + dimsToString(dims[0]) + " / value "
            + dimsToString(dims[2]) + " in " + dataTypeName(in[0].type) + " with feature_map=" + mAttrs.featureMap);
    }
    // Load the kernel modules now, in the execution context's CUDA context, not at the first enqueue (which may
    // be inside CUDA-graph capture). Without a current context the launcher loads them at the first launch.
    int cc = 0;
    if (flurka_attention_device_cc(&cc) == 0)
    {
        int const rc = flurka_attention_prepare(&params);
        if (rc != 0)
        {
            char const* what = flurka_attention_error_string(rc);
            return fail("loading the kernels failed (code " + std::to_string(rc) + "): " + (what != nullptr ? what : "?"));
        }
    }
    mNbInputs = nbInputs;
    return 0;
}

int32_t FlurkaAttentionPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
    void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept
try
{
    if (mNbInputs < 3)
    {
        return fail("enqueue called before the plugin was configured");
    }
    Dims dims[4];
    for (int32_t i = 0; i < mNbInputs; ++i)
    {
        dims[i] = inputDesc[i].dims;
    }
    flurka_attention_params_t params;
    std::string error;
    if (!makeParams(dims, mNbInputs, inputDesc[0].type, params, error))
    {
        return fail(error);
    }
    void const* featureProj = (mAttrs.needsFeatureProj() && mNbInputs > 3) ? inputs[3] : nullptr;
    size_t const workspaceSize = flurka_attention_workspace_size(&params);
    CUstream const cuStream = stream; // cudaStream_t and CUstream are the same handle type
    int const rc = flurka_attention_launch(
        &params, inputs[0], inputs[1], inputs[2], featureProj, outputs[0], workspace, workspaceSize, cuStream);
    if (rc != 0)
    {
        char const* what = flurka_attention_error_string(rc);
        return fail("kernel launch failed (code " + std::to_string(rc) + "): " + (what != nullptr ? what : "?"));
    }
    return 0;
}
catch (...)
{
    return fail("enqueue failed: out of memory");
}

IPluginV3* FlurkaAttentionPlugin::attachToContext(IPluginResourceContext* /*context*/) noexcept
{
    return clone();
}

} // namespace plugin
} // namespace flurka
