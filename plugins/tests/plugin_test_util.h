/* Shared helpers of the plugin tests (test_plugin.cpp, test_plugin_runtime.cpp). */
#ifndef FLURKA_PLUGIN_TEST_UTIL_H
#define FLURKA_PLUGIN_TEST_UTIL_H

#include "check.h"
#include "fake_cuda.h"
#include "fake_tensorrt.h"
#include "flurkaAttentionPlugin.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

extern "C" nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) noexcept;
extern "C" void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept;

namespace plugin_test
{
using namespace nvinfer1;
using flurka::plugin::FlurkaAttentionPlugin;
using flurka_test::Dim;
using flurka_test::TestLogger;

extern TestLogger gLogger; //!< what the plugin logged (through setLoggerFinder)

void testConfigureAndEnqueue();
void testAllocationFailure();
void testNoDriver(); //!< run alone, in a process whose driver library does not exist

inline IPluginCreatorV3One* creator()
{
    int32_t n = 0;
    IPluginCreatorInterface* const* creators = getCreators(n);
    return n == 1 ? flurka_test::asV3(creators[0]) : nullptr;
}

//! Fields as TensorRT's ONNX parser sends them (INT -> kINT32, FLOAT -> kFLOAT32, STRING -> kCHAR with NUL).
struct Fields
{
    int32_t heads{2};
    std::string fmap{"relu"};
    int32_t fmapLength{-1}; // -1: strlen + 1 (with the NUL)
    float stabilizer{0.25F};
    float eps{0.5F};
    std::vector<PluginField> list;
    PluginFieldCollection fc{};

    PluginFieldCollection const* get(bool withOptional = true, bool withParserExtras = true)
    {
        list.clear();
        list.emplace_back("num_heads", &heads, PluginFieldType::kINT32, 1);
        list.emplace_back("feature_map", fmap.c_str(), PluginFieldType::kCHAR,
            fmapLength < 0 ? static_cast<int32_t>(fmap.size() + 1) : fmapLength);
        if (withOptional)
        {
            list.emplace_back("stabilizer", &stabilizer, PluginFieldType::kFLOAT32, 1);
            list.emplace_back("eps", &eps, PluginFieldType::kFLOAT32, 1);
        }
        if (withParserExtras)
        {
            list.emplace_back("plugin_namespace", "com.flurka", PluginFieldType::kCHAR, 11);
            list.emplace_back("plugin_version", "1", PluginFieldType::kCHAR, 2);
        }
        fc.nbFields = static_cast<int32_t>(list.size());
        fc.fields = list.data();
        return &fc;
    }
};

inline std::unique_ptr<IPluginV3> create(Fields& f, char const* name = "attn0", TensorRTPhase phase = TensorRTPhase::kBUILD)
{
    return std::unique_ptr<IPluginV3>(creator()->createPlugin(name, f.get(), phase));
}

inline FlurkaAttentionPlugin* impl(IPluginV3* p)
{
    return static_cast<FlurkaAttentionPlugin*>(static_cast<IPluginV3OneCore*>(p->getCapabilityInterface(PluginCapabilityType::kCORE)));
}
inline IPluginV3OneBuild* build(IPluginV3* p)
{
    return static_cast<IPluginV3OneBuild*>(p->getCapabilityInterface(PluginCapabilityType::kBUILD));
}
inline IPluginV3OneRuntime* runtime(IPluginV3* p)
{
    return static_cast<IPluginV3OneRuntime*>(p->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
}

inline Dims dims3(int64_t a, int64_t b, int64_t c)
{
    Dims d{};
    d.nbDims = 3;
    d.d[0] = a;
    d.d[1] = b;
    d.d[2] = c;
    return d;
}

inline bool errorLogged(char const* part)
{
    bool const saw = gLogger.saw(ILogger::Severity::kERROR, part);
    if (!saw)
    {
        std::printf("  expected an error containing: %s\n", part);
        for (auto const& m : gLogger.messages)
            std::printf("  logged: %s\n", m.second.c_str());
    }
    gLogger.messages.clear();
    return saw;
}

inline DynamicPluginTensorDesc desc(Dims d, DataType t = DataType::kHALF, TensorFormat fmt = TensorFormat::kLINEAR)
{
    DynamicPluginTensorDesc x{};
    x.desc.dims = d;
    x.desc.type = t;
    x.desc.format = fmt;
    x.min = d;
    x.opt = d;
    x.max = d;
    return x;
}


} // namespace plugin_test

#endif
