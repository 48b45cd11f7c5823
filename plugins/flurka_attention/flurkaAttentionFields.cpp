/*
 * FlurkaAttention plugin: its fields (read and validated from the ONNX node's attributes or a serialized engine,
 * and written back for serialization), its logging, and the value formatting that all its messages share.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "flurkaAttentionInternal.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

using namespace nvinfer1;

namespace flurka
{
namespace plugin
{
namespace
{

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

} // namespace

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

// Part of IPluginV3OneRuntime, kept beside parseFields: what it writes, parseFields reads back from an engine.
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

} // namespace plugin
} // namespace flurka
