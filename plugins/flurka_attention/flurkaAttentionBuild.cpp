/*
 * FlurkaAttention plugin, build phase (IPluginV3OneBuild): input count, shape and type checks, output types and
 * shapes, supported formats, and the workspace for a profile's maximum shapes.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "flurkaAttentionInternal.h"

#include <cstdio>
#include <string>

using namespace nvinfer1;

namespace flurka
{
namespace plugin
{
namespace
{

char const* const kINPUT_NAMES[] = {"query", "key", "value", "feature_proj"};

bool isSupportedType(DataType type) noexcept
{
    return type == DataType::kFLOAT || type == DataType::kHALF || type == DataType::kBF16;
}

//! Known extents of DimsExprs (-1 where the extent is only known at run time).
Dims knownDims(DimsExprs const& exprs) noexcept
{
    Dims dims{};
    dims.nbDims = exprs.nbDims;
    for (int32_t i = 0; i < exprs.nbDims && i < Dims::MAX_DIMS; ++i)
    {
        dims.d[i] = exprs.d[i]->isConstant() ? exprs.d[i]->getConstantValue() : -1;
    }
    return dims;
}

//! The first mismatch among the known (>= 0) extents of query/key/value/feature_proj (ranks already checked);
//! empty when they agree.
std::string extentsError(Dims const* dims, FlurkaAttentionAttrs const& attrs)
{
    int64_t const h = attrs.numHeads;
    Dims const& q = dims[0];
    Dims const& k = dims[1];
    Dims const& v = dims[2];
    char const* const sizeNames[] = {"query", "key", "value"};
    for (int32_t i = 0; i < 3; ++i)
    {
        int64_t const size = dims[i].d[2];
        if (size >= 0 && size % h != 0)
        {
            return std::string(sizeNames[i]) + " hidden size " + std::to_string(size) + " (shape "
                + dimsToString(dims[i]) + ") is not divisible by num_heads=" + std::to_string(h);
        }
    }
    if (q.d[2] >= 0 && k.d[2] >= 0 && q.d[2] != k.d[2])
    {
        return "key hidden size " + std::to_string(k.d[2]) + " differs from query hidden size "
            + std::to_string(q.d[2]);
    }
    for (int32_t i = 1; i < 3; ++i)
    {
        if (q.d[0] >= 0 && dims[i].d[0] >= 0 && q.d[0] != dims[i].d[0])
        {
            return std::string(sizeNames[i]) + " batch " + std::to_string(dims[i].d[0])
                + " differs from query batch " + std::to_string(q.d[0]);
        }
    }
    if (k.d[1] >= 0 && v.d[1] >= 0 && k.d[1] != v.d[1])
    {
        return "key length " + std::to_string(k.d[1]) + " differs from value length "
            + std::to_string(v.d[1]);
    }
    if (attrs.needsFeatureProj())
    {
        Dims const& p = dims[3];
        if (p.d[0] >= 0 && p.d[0] != h)
        {
            return "feature_proj shape " + dimsToString(p) + " does not start with num_heads="
                + std::to_string(h);
        }
        if (p.d[2] >= 0 && q.d[2] >= 0 && p.d[2] != q.d[2] / h)
        {
            return "feature_proj shape " + dimsToString(p) + " does not end with head_dim="
                + std::to_string(q.d[2] / h);
        }
    }
    return std::string();
}

} // namespace

//! The message for an empty key sequence (Nk = 0), which the kernels do not take.
std::string emptyKeysMessage(Dims const& key)
{
    return "key and value have length Nk=0 (key shape " + dimsToString(key)
        + "): the TensorRT plugin needs at least one key; give the model a non-empty key sequence";
}

int32_t FlurkaAttentionPlugin::checkShapes(Dims const* dims, int32_t nbInputs) const noexcept
{
    try
    {
        if (nbInputs != 3 && nbInputs != 4)
        {
            return fail("the node has " + std::to_string(nbInputs)
                + " inputs; expected 3 (query, key, value) or 4 (query, key, value, feature_proj)");
        }
        if (mAttrs.needsFeatureProj() && nbInputs < 4)
        {
            return fail("feature_map='" + mAttrs.featureMap
                + "' needs input 3 (feature_proj [H, P, d]), but the node has only 3 inputs");
        }
        for (int32_t i = 0; i < nbInputs; ++i)
        {
            if (dims[i].nbDims != 3)
            {
                return fail("input " + std::to_string(i) + " (" + kINPUT_NAMES[i] + ") has shape "
                    + dimsToString(dims[i]) + "; expected rank 3");
            }
        }
        std::string const error = extentsError(dims, mAttrs);
        return error.empty() ? 0 : fail(error);
    }
    catch (...)
    {
        return fail("shape check failed: out of memory");
    }
}

int32_t FlurkaAttentionPlugin::checkCounts(int32_t nbInputs, int32_t nbOutputs) const
{
    if (nbOutputs != 1)
    {
        return fail("expected 1 output, got " + std::to_string(nbOutputs));
    }
    if (nbInputs < 3 || nbInputs > 4)
    {
        return checkShapes(nullptr, nbInputs); // reports the input count; reads no dims
    }
    return 0;
}

int32_t FlurkaAttentionPlugin::configurePlugin(
    DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept
{
    try
    {
        return configure(in, nbInputs, nbOutputs);
    }
    catch (...)
    {
        return fail("configurePlugin failed: out of memory");
    }
}

int32_t FlurkaAttentionPlugin::configure(DynamicPluginTensorDesc const* in, int32_t nbInputs, int32_t nbOutputs)
{
    if (int32_t const rc = checkCounts(nbInputs, nbOutputs))
    {
        return rc;
    }
    Dims desc[4];
    Dims maxDims[4];
    for (int32_t i = 0; i < nbInputs; ++i)
    {
        desc[i] = in[i].desc.dims;
        maxDims[i] = in[i].max;
    }
    if (checkShapes(desc, nbInputs) != 0 || checkShapes(maxDims, nbInputs) != 0)
    {
        return -1;
    }
    mNbInputs = nbInputs;
    if (maxDims[1].d[1] == 0)
    {
        return fail(emptyKeysMessage(maxDims[1]));
    }
    if (checkDevice() != 0)
    {
        return -1;
    }
    flurka_attention_params_t params;
    std::string error;
    if (!makeParams(maxDims, nbInputs, in[0].desc.type, params, error))
    {
        return fail(error);
    }
    if (!flurka_attention_supported(&params))
    {
        return fail(std::string("the compiled kernels do not support this configuration: ") + dataTypeName(in[0].desc.type)
            + ", feature_map=" + mAttrs.featureMap + ", num_heads=" + std::to_string(params.num_heads) + ", head_dim="
            + std::to_string(params.head_dim) + ", value head_dim=" + std::to_string(params.value_dim)
            + ", num_proj=" + std::to_string(params.num_proj) + " (rebuild them with `flurka-export build-plugin`)");
    }
    return 0;
}

int32_t FlurkaAttentionPlugin::getOutputDataTypes(
    DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    char message[256];
    if (nbOutputs != 1 || nbInputs < 3)
    {
        std::snprintf(message, sizeof(message), "expected 1 output and at least 3 inputs, got %d and %d", nbOutputs,
            nbInputs);
        return fail(static_cast<char const*>(message));
    }
    if (!isSupportedType(inputTypes[0]))
    {
        std::snprintf(message, sizeof(message), "query has type %s; supported: float32, float16, bfloat16",
            dataTypeName(inputTypes[0]));
        return fail(static_cast<char const*>(message));
    }
    outputTypes[0] = inputTypes[0];
    return 0;
}

int32_t FlurkaAttentionPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs,
    DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
    IExprBuilder& /*exprBuilder*/) noexcept
{
    try
    {
        return outputShapes(inputs, nbInputs, outputs, nbOutputs);
    }
    catch (...)
    {
        return fail("getOutputShapes failed: out of memory");
    }
}

int32_t FlurkaAttentionPlugin::outputShapes(
    DimsExprs const* inputs, int32_t nbInputs, DimsExprs* outputs, int32_t nbOutputs)
{
    if (int32_t const rc = checkCounts(nbInputs, nbOutputs))
    {
        return rc;
    }
    Dims known[4];
    for (int32_t i = 0; i < nbInputs; ++i)
    {
        known[i] = knownDims(inputs[i]);
    }
    if (checkShapes(known, nbInputs) != 0)
    {
        return -1;
    }
    // output [B, Nq, H*dv]: batch and length of the query, hidden size of the value.
    outputs[0].nbDims = 3;
    outputs[0].d[0] = inputs[0].d[0];
    outputs[0].d[1] = inputs[0].d[1];
    outputs[0].d[2] = inputs[2].d[2];
    return 0;
}

bool FlurkaAttentionPlugin::supportsFormatCombination(
    int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    if (pos < 0 || pos >= nbInputs + nbOutputs)
    {
        return false;
    }
    if (pos == 0 && checkDevice() != 0)
    {
        return false; // this GPU has no kernel image: no format combination is supported
    }
    PluginTensorDesc const& desc = inOut[pos].desc;
    if (desc.format != TensorFormat::kLINEAR || !isSupportedType(desc.type))
    {
        return false;
    }
    // All inputs and the output share one type T.
    return pos == 0 || desc.type == inOut[0].desc.type;
}

int32_t FlurkaAttentionPlugin::getNbOutputs() const noexcept
{
    return 1;
}

size_t FlurkaAttentionPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
    DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept
{
    if (nbInputs < 3 || nbInputs > 4)
    {
        return 0;
    }
    try
    {
        // The workspace must serve every shape of the profile: size it for the maximum dimensions.
        Dims maxDims[4];
        for (int32_t i = 0; i < nbInputs; ++i)
        {
            maxDims[i] = inputs[i].max;
        }
        flurka_attention_params_t params;
        std::string error;
        if (!makeParams(maxDims, nbInputs, inputs[0].desc.type, params, error))
        {
            fail("cannot size the workspace: " + error);
            return 0;
        }
        return flurka_attention_workspace_size(&params);
    }
    catch (...)
    {
        fail("getWorkspaceSize failed: out of memory");
        return 0;
    }
}

} // namespace plugin
} // namespace flurka
