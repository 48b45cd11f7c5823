/*
 * FlurkaAttention TensorRT plugin (IPluginV3): com.flurka::FlurkaAttention version 1.
 *
 * Computes docs/op-spec.md section 1 step 3 (kernel attention over the - possibly low-rank shortened - keys) by calling the
 * ahead-of-time compiled kernels through the launcher C API (flurka_attention_launch.h). Shapes:
 *   input 0 query [B, Nq, H*d], 1 key [B, Nk, H*d], 2 value [B, Nk, H*dv], 3 feature_proj [H, P, d] (rfa, favor)
 *   output 0 [B, Nq, H*dv]; all of one type T in {float32, float16, bfloat16}, linear format.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "flurkaAttentionPlugin.h"

#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <utility>

using namespace nvinfer1;

namespace flurka
{
namespace plugin
{
namespace
{

char const* const kINPUT_NAMES[] = {"query", "key", "value", "feature_proj"};

//! Holds the ILoggerFinder that TensorRT hands over through setLoggerFinder(), or the fallback logger.
class LoggerFinderSlot
{
public:
    void set(ILoggerFinder* finder) noexcept
    {
        std::lock_guard<std::mutex> lock(mMutex);
        mFinder = finder;
    }

    void setFallback(ILogger* logger) noexcept
    {
        std::lock_guard<std::mutex> lock(mMutex);
        mFallback = logger;
    }

    ILogger* findLogger() noexcept
    {
        std::lock_guard<std::mutex> lock(mMutex);
        ILogger* logger = mFinder != nullptr ? mFinder->findLogger() : nullptr;
        return logger != nullptr ? logger : mFallback;
    }

private:
    std::mutex mMutex;
    ILoggerFinder* mFinder{nullptr};
    ILogger* mFallback{nullptr};
};

LoggerFinderSlot& loggerFinderSlot() noexcept
{
    static LoggerFinderSlot slot;
    return slot;
}

char const* fieldTypeName(PluginFieldType type) noexcept
{
    switch (type)
    {
    case PluginFieldType::kFLOAT16: return "kFLOAT16";
    case PluginFieldType::kFLOAT32: return "kFLOAT32";
    case PluginFieldType::kFLOAT64: return "kFLOAT64";
    case PluginFieldType::kINT8: return "kINT8";
    case PluginFieldType::kINT16: return "kINT16";
    case PluginFieldType::kINT32: return "kINT32";
    case PluginFieldType::kCHAR: return "kCHAR";
    case PluginFieldType::kDIMS: return "kDIMS";
    case PluginFieldType::kUNKNOWN: return "kUNKNOWN";
    case PluginFieldType::kBF16: return "kBF16";
    case PluginFieldType::kINT64: return "kINT64";
    case PluginFieldType::kFP8: return "kFP8";
    case PluginFieldType::kINT4: return "kINT4";
    case PluginFieldType::kFP4: return "kFP4";
    }
    return "unknown type";
}

char const* dataTypeName(DataType type) noexcept
{
    switch (type)
    {
    case DataType::kFLOAT: return "float32";
    case DataType::kHALF: return "float16";
    case DataType::kBF16: return "bfloat16";
    default: return "an unsupported type";
    }
}

bool isSupportedType(DataType type) noexcept
{
    return type == DataType::kFLOAT || type == DataType::kHALF || type == DataType::kBF16;
}

std::string dimsToString(Dims const& dims)
{
    std::string s = "[";
    for (int32_t i = 0; i < dims.nbDims; ++i)
    {
        s += (i ? ", " : "") + (dims.d[i] < 0 ? std::string("?") : std::to_string(dims.d[i]));
    }
    return s + "]";
}

std::string floatToString(double value)
{
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.9g", value);
    return buf;
}

std::string allowedFeatureMaps()
{
    std::string s;
    for (int32_t i = 0; i < kNB_FEATURE_MAPS; ++i)
    {
        s += (i ? ", " : "") + std::string(kFEATURE_MAPS[i]);
    }
    return s;
}

bool readInt(PluginField const& f, int64_t& value, std::string& error)
{
    if (f.data == nullptr || f.length < 1)
    {
        error = std::string("field ") + f.name + " has no value";
        return false;
    }
    switch (f.type)
    {
    case PluginFieldType::kINT32: value = *static_cast<int32_t const*>(f.data); return true;
    case PluginFieldType::kINT64: value = *static_cast<int64_t const*>(f.data); return true;
    case PluginFieldType::kINT16: value = *static_cast<int16_t const*>(f.data); return true;
    case PluginFieldType::kINT8: value = *static_cast<int8_t const*>(f.data); return true;
    default: break;
    }
    error = std::string("field ") + f.name + " has type " + fieldTypeName(f.type) + "; expected kINT32";
    return false;
}

bool readFloat(PluginField const& f, float& value, std::string& error)
{
    if (f.data == nullptr || f.length < 1)
    {
        error = std::string("field ") + f.name + " has no value";
        return false;
    }
    double v = 0.0;
    switch (f.type)
    {
    case PluginFieldType::kFLOAT32: v = static_cast<double>(*static_cast<float const*>(f.data)); break;
    case PluginFieldType::kFLOAT64: v = *static_cast<double const*>(f.data); break;
    default:
        error = std::string("field ") + f.name + " has type " + fieldTypeName(f.type) + "; expected kFLOAT32";
        return false;
    }
    if (!std::isfinite(v))
    {
        error = std::string("field ") + f.name + "=" + floatToString(v) + " is invalid: it must be a finite number";
        return false;
    }
    value = static_cast<float>(v);
    return true;
}

bool readString(PluginField const& f, std::string& value, std::string& error)
{
    if (f.type != PluginFieldType::kCHAR)
    {
        error = std::string("field ") + f.name + " has type " + fieldTypeName(f.type) + "; expected kCHAR";
        return false;
    }
    if (f.data == nullptr || f.length < 0)
    {
        error = std::string("field ") + f.name + " has no value";
        return false;
    }
    auto const* chars = static_cast<char const*>(f.data);
    // The ONNX parser passes the string NUL-terminated (length may or may not count the NUL): stop at the first NUL.
    size_t const n = strnlen(chars, static_cast<size_t>(f.length));
    value.assign(chars, n);
    return true;
}

//! An int field that must be >= 1 (num_heads, nu).
bool readPositiveInt(PluginField const& f, int32_t& value, std::string& error)
{
    int64_t v = 0;
    if (!readInt(f, v, error))
    {
        return false;
    }
    if (v < 1 || v > INT32_MAX)
    {
        error = std::string("field ") + f.name + "=" + std::to_string(v) + " is invalid: it must be a positive integer";
        return false;
    }
    value = static_cast<int32_t>(v);
    return true;
}

//! The feature_map field: one of kFEATURE_MAPS, stored as its name and its flurka_feature_map_t id.
bool readFeatureMap(PluginField const& f, FlurkaAttentionAttrs& attrs, std::string& error)
{
    std::string v;
    if (!readString(f, v, error))
    {
        return false;
    }
    int32_t id = -1;
    for (int32_t k = 0; k < kNB_FEATURE_MAPS; ++k)
    {
        if (v == kFEATURE_MAPS[k])
        {
            id = k;
        }
    }
    if (id < 0)
    {
        error = "field feature_map='" + v + "' is not a known feature map (allowed: " + allowedFeatureMaps() + ")";
        return false;
    }
    attrs.featureMap = v;
    attrs.featureMapId = static_cast<flurka_feature_map_t>(id);
    return true;
}

//! One named field into `attrs`, noting the required ones as seen; unknown fields are logged and skipped.
bool readField(PluginField const& f, FlurkaAttentionAttrs& attrs, bool& haveHeads, bool& haveMap, std::string& error)
{
    std::string const name(f.name);
    if (name == "num_heads" || name == "nu")
    {
        if (!readPositiveInt(f, name == "nu" ? attrs.nu : attrs.numHeads, error))
        {
            return false;
        }
        haveHeads = haveHeads || name == "num_heads";
    }
    else if (name == "feature_map")
    {
        if (!readFeatureMap(f, attrs, error))
        {
            return false;
        }
        haveMap = true;
    }
    else if (name == "stabilizer")
    {
        return readFloat(f, attrs.stabilizer, error);
    }
    else if (name == "eps")
    {
        return readFloat(f, attrs.eps, error);
    }
    else if (name != "plugin_namespace" && name != "plugin_version")
    {
        logMessage(ILogger::Severity::kWARNING, "ignoring unknown field '" + name + "'");
    }
    return true;
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

} // namespace

void logMessage(ILogger::Severity severity, char const* message) noexcept
{
    // A fixed buffer: logging must work when memory is exhausted (long messages are cut).
    char full[2048];
    std::snprintf(full, sizeof(full), "%s::%s (plugin version %s): %s", kPLUGIN_NAMESPACE, kPLUGIN_NAME,
        kPLUGIN_VERSION, message != nullptr ? message : "(no message)");
    ILogger* logger = loggerFinderSlot().findLogger();
    if (logger != nullptr)
    {
        logger->log(severity, full);
    }
    else if (severity <= ILogger::Severity::kWARNING)
    {
        std::fprintf(stderr, "%s\n", full);
    }
}

void logMessage(ILogger::Severity severity, std::string const& message) noexcept
{
    logMessage(severity, message.c_str());
}

void setLoggerFinderImpl(ILoggerFinder* finder) noexcept
{
    loggerFinderSlot().set(finder);
}

void setFallbackLogger(ILogger* logger) noexcept
{
    loggerFinderSlot().setFallback(logger);
}

bool parseFields(PluginFieldCollection const* fc, FlurkaAttentionAttrs& attrs, std::string& error) noexcept
{
    try
    {
        bool haveHeads = false;
        bool haveMap = false;
        int32_t const nb = fc != nullptr ? fc->nbFields : 0;
        for (int32_t i = 0; i < nb; ++i)
        {
            PluginField const& f = fc->fields[i];
            if (f.name != nullptr && !readField(f, attrs, haveHeads, haveMap, error))
            {
                return false;
            }
        }
        if (!haveHeads || !haveMap)
        {
            error = std::string("required field ") + (haveHeads ? "feature_map" : "num_heads") + " is missing";
            return false;
        }
        return true;
    }
    catch (...)
    {
        error.clear(); // out of memory: the caller reports it
        return false;
    }
}

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

int32_t FlurkaAttentionPlugin::checkDevice() noexcept
{
    int cc = 0;
    if (flurka_attention_device_cc(&cc) != 0 || flurka_attention_device_supported(cc))
    {
        return 0; // no current context (nothing to check yet), or a supported GPU
    }
    if (!mDeviceReported)
    {
        mDeviceReported = true;
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

namespace
{

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

//! The message for an empty key sequence (Nk = 0), which the kernels do not take.
static std::string emptyKeysMessage(Dims const& key)
{
    return "key and value have length Nk=0 (key shape " + dimsToString(key)
        + "): the TensorRT plugin needs at least one key; give the model a non-empty key sequence";
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
    if (nbOutputs != 1)
    {
        return fail("expected 1 output, got " + std::to_string(nbOutputs));
    }
    if (nbInputs < 3 || nbInputs > 4)
    {
        return checkShapes(nullptr, nbInputs); // reports the input count; reads no dims
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
    if (nbOutputs != 1)
    {
        return fail("expected 1 output, got " + std::to_string(nbOutputs));
    }
    if (nbInputs < 3 || nbInputs > 4)
    {
        return checkShapes(nullptr, nbInputs); // reports the input count; reads no dims
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

char const* FlurkaAttentionPlugin::getTimingCacheID() noexcept
{
    return mTimingCacheId.c_str();
}

char const* FlurkaAttentionPlugin::getMetadataString() noexcept
{
    return mMetadata.c_str();
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
    if (nbOutputs != 1)
    {
        return fail("expected 1 output, got " + std::to_string(nbOutputs));
    }
    if (nbInputs < 3 || nbInputs > 4)
    {
        return checkShapes(nullptr, nbInputs); // reports the input count; reads no dims
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

PluginFieldCollection const* FlurkaAttentionPlugin::getFieldsToSerialize() noexcept
{
    try
    {
        // Same names and types as kFIELDS (the creator's getFieldNames), pointing at this plugin's members.
        mSerialFields.clear();
        mSerialFields.emplace_back(kFIELDS[0].name, &mAttrs.numHeads, kFIELDS[0].type, 1);
        mSerialFields.emplace_back(kFIELDS[1].name, mAttrs.featureMap.c_str(), kFIELDS[1].type,
            static_cast<int32_t>(mAttrs.featureMap.size() + 1));
        mSerialFields.emplace_back(kFIELDS[2].name, &mAttrs.stabilizer, kFIELDS[2].type, 1);
        mSerialFields.emplace_back(kFIELDS[3].name, &mAttrs.eps, kFIELDS[3].type, 1);
        mSerialFields.emplace_back(kFIELDS[4].name, &mAttrs.nu, kFIELDS[4].type, 1);
        mSerialFc.nbFields = static_cast<int32_t>(mSerialFields.size());
        mSerialFc.fields = mSerialFields.data();
        return &mSerialFc;
    }
    catch (...)
    {
        fail("serializing the fields failed: out of memory");
        return nullptr;
    }
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
