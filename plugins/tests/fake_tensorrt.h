/* Fakes of TensorRT's runtime objects for the host-side tests: a logger that records messages, a plugin registry
 * that behaves as the headers document (registerCreator fails on a duplicate; loadLibrary dlopens, calls
 * setLoggerFinder and getCreators, registers each creator under the namespace it reports, and fails if any is
 * registered already), and dimension expressions for getOutputShapes. */
#ifndef FLURKA_FAKE_TENSORRT_H
#define FLURKA_FAKE_TENSORRT_H

#include <NvInferRuntime.h>
#include <NvInferVersion.h>

#include <dlfcn.h>

#include <limits>
#include <string>
#include <tuple>
#include <vector>

namespace flurka_test
{

class TestLogger : public nvinfer1::ILogger
{
public:
    void log(Severity severity, nvinfer1::AsciiChar const* msg) noexcept override
    {
        messages.emplace_back(severity, msg);
    }
    bool saw(Severity severity, char const* part) const
    {
        for (auto const& m : messages)
        {
            if (m.first == severity && m.second.find(part) != std::string::npos)
            {
                return true;
            }
        }
        return false;
    }
    size_t count(Severity severity) const
    {
        size_t n = 0;
        for (auto const& m : messages)
        {
            n += m.first == severity ? 1 : 0;
        }
        return n;
    }
    std::vector<std::pair<Severity, std::string>> messages;
};

class TestLoggerFinder : public nvinfer1::ILoggerFinder
{
public:
    explicit TestLoggerFinder(nvinfer1::ILogger* logger)
        : mLogger(logger)
    {
    }
    nvinfer1::ILogger* findLogger() override
    {
        return mLogger;
    }

private:
    nvinfer1::ILogger* mLogger;
};

inline nvinfer1::IPluginCreatorV3One* asV3(nvinfer1::IPluginCreatorInterface* c)
{
    return static_cast<nvinfer1::IPluginCreatorV3One*>(c);
}

class FakeRegistry : public nvinfer1::IPluginRegistry
{
public:
    struct Entry
    {
        nvinfer1::IPluginCreatorInterface* creator;
        std::string name, version, ns;
    };
    std::vector<Entry> entries;
    nvinfer1::ILoggerFinder* finder{nullptr};

    void setErrorRecorder(nvinfer1::IErrorRecorder* const) noexcept override {}
    nvinfer1::IErrorRecorder* getErrorRecorder() const noexcept override
    {
        return nullptr;
    }
    bool isParentSearchEnabled() const override
    {
        return false;
    }
    void setParentSearchEnabled(bool const) override {}
    PluginLibraryHandle loadLibrary(nvinfer1::AsciiChar const* pluginPath) noexcept override
    {
        void* handle = dlopen(pluginPath, RTLD_LAZY | RTLD_LOCAL);
        if (handle == nullptr)
        {
            return nullptr;
        }
        using GetCreators = nvinfer1::IPluginCreatorInterface* const* (*) (int32_t&);
        using SetLoggerFinder = void (*)(nvinfer1::ILoggerFinder*);
        auto getCreators = reinterpret_cast<GetCreators>(dlsym(handle, "getCreators"));
        auto setLoggerFinder = reinterpret_cast<SetLoggerFinder>(dlsym(handle, "setLoggerFinder"));
        if (getCreators == nullptr)
        {
            return nullptr;
        }
        if (setLoggerFinder != nullptr)
        {
            setLoggerFinder(finder);
        }
        int32_t n = 0;
        auto creators = getCreators(n);
        for (int32_t i = 0; i < n; ++i)
        {
            if (find(asV3(creators[i])->getPluginName(), asV3(creators[i])->getPluginVersion(),
                    asV3(creators[i])->getPluginNamespace())
                != nullptr)
            {
                return nullptr;
            }
        }
        for (int32_t i = 0; i < n; ++i)
        {
            registerCreator(*creators[i], asV3(creators[i])->getPluginNamespace());
        }
        return handle;
    }
    void deregisterLibrary(PluginLibraryHandle) noexcept override {}
    bool registerCreator(nvinfer1::IPluginCreatorInterface& creator, nvinfer1::AsciiChar const* const ns) noexcept override
    {
        auto* v3 = asV3(&creator);
        if (find(v3->getPluginName(), v3->getPluginVersion(), ns) != nullptr)
        {
            return false;
        }
        entries.push_back({&creator, v3->getPluginName(), v3->getPluginVersion(), ns});
        return true;
    }
    nvinfer1::IPluginCreatorInterface* const* getAllCreators(int32_t* const n) const noexcept override
    {
        *n = 0;
        return nullptr;
    }
    nvinfer1::IPluginCreatorInterface* getCreator(nvinfer1::AsciiChar const* const name,
        nvinfer1::AsciiChar const* const version, nvinfer1::AsciiChar const* const ns = "") noexcept override
    {
        Entry const* e = find(name, version, ns);
        return e != nullptr ? e->creator : nullptr;
    }
    bool deregisterCreator(nvinfer1::IPluginCreatorInterface const& creator) noexcept override
    {
        for (auto it = entries.begin(); it != entries.end(); ++it)
        {
            if (it->creator == &creator)
            {
                entries.erase(it);
                return true;
            }
        }
        return false;
    }
    nvinfer1::IPluginResource* acquirePluginResource(nvinfer1::AsciiChar const*, nvinfer1::IPluginResource*) noexcept override
    {
        return nullptr;
    }
    int32_t releasePluginResource(nvinfer1::AsciiChar const*) noexcept override
    {
        return 0;
    }
    nvinfer1::IPluginCreatorInterface* const* getAllCreatorsRecursive(int32_t* const n) noexcept override
    {
        *n = 0;
        return nullptr;
    }
#if NV_TENSORRT_MAJOR < 11
    // TensorRT 10's deprecated IPluginCreator (V2) overloads, gone in 11: never used by an IPluginV3 plugin.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    bool registerCreator(nvinfer1::IPluginCreator&, nvinfer1::AsciiChar const* const) noexcept override
    {
        return false;
    }
    nvinfer1::IPluginCreator* const* getPluginCreatorList(int32_t* const n) const noexcept override
    {
        *n = 0;
        return nullptr;
    }
    nvinfer1::IPluginCreator* getPluginCreator(nvinfer1::AsciiChar const* const, nvinfer1::AsciiChar const* const,
        nvinfer1::AsciiChar const* const = "") noexcept override
    {
        return nullptr;
    }
    bool deregisterCreator(nvinfer1::IPluginCreator const&) noexcept override
    {
        return false;
    }
#pragma GCC diagnostic pop
#endif

private:
    Entry const* find(std::string const& name, std::string const& version, std::string const& ns) const
    {
        for (auto const& e : entries)
        {
            if (e.name == name && e.version == version && e.ns == ns)
            {
                return &e;
            }
        }
        return nullptr;
    }
};

//! IDimensionExpr is header-only around mImpl: point it at our own VDimensionExpr.
class DimImpl : public nvinfer1::apiv::VDimensionExpr
{
public:
    explicit DimImpl(int64_t value)
        : mValue(value)
    {
    }
    bool isConstant() const override
    {
        return mValue >= 0;
    }
    int64_t getConstantValue() const override
    {
        return mValue >= 0 ? mValue : std::numeric_limits<int64_t>::min();
    }
    bool isSizeTensor() const override
    {
        return false;
    }

private:
    int64_t mValue;
};

class Dim : public nvinfer1::IDimensionExpr
{
public:
    explicit Dim(int64_t value) //!< value < 0: a runtime extent
        : mDimImpl(value)
    {
        mImpl = &mDimImpl;
    }
    ~Dim() noexcept override = default;

private:
    DimImpl mDimImpl;
};

class ExprImpl : public nvinfer1::apiv::VExprBuilder
{
public:
    nvinfer1::IDimensionExpr const* constant(int64_t) override
    {
        return nullptr;
    }
    nvinfer1::IDimensionExpr const* operation(
        nvinfer1::DimensionOperation, nvinfer1::IDimensionExpr const&, nvinfer1::IDimensionExpr const&) override
    {
        return nullptr;
    }
    nvinfer1::IDimensionExpr const* declareSizeTensor(
        int32_t, nvinfer1::IDimensionExpr const&, nvinfer1::IDimensionExpr const&) override
    {
        return nullptr;
    }
};

class ExprBuilder : public nvinfer1::IExprBuilder
{
public:
    ExprBuilder()
    {
        mImpl = &mExprImpl;
    }
    ~ExprBuilder() noexcept override = default;

private:
    ExprImpl mExprImpl;
};

} // namespace flurka_test

#endif
