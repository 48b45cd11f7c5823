/* The plugin and its creator against a test logger, fake dimension expressions and the fake CUDA driver (with the
 * real generated launcher and a table of fake images): fields, serialization round trip, clones, shapes, formats,
 * workspace, device checks, module loading at shape change, and enqueue. */
#include "check.h"
#include "fake_cuda.h"
#include "fake_tensorrt.h"
#include "flurkaAttentionPlugin.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <memory>
#include <string>

using namespace nvinfer1;
using flurka::plugin::FlurkaAttentionPlugin;
using flurka_test::Dim;
using flurka_test::TestLogger;

// Allocation failure on demand: every noexcept entry point must then fail cleanly instead of terminating.
namespace
{
bool gFailAllocations = false;
int gFailedAllocations = 0;
} // namespace

void* operator new(std::size_t size)
{
    if (gFailAllocations)
    {
        ++gFailedAllocations;
        throw std::bad_alloc();
    }
    void* p = std::malloc(size == 0 ? 1 : size);
    if (p == nullptr)
    {
        throw std::bad_alloc();
    }
    return p;
}

void operator delete(void* p) noexcept
{
    std::free(p);
}

void operator delete(void* p, std::size_t) noexcept
{
    std::free(p);
}

extern "C" IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) noexcept;
extern "C" void setLoggerFinder(ILoggerFinder* finder) noexcept;

namespace
{

TestLogger gLogger;

IPluginCreatorV3One* creator()
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

std::unique_ptr<IPluginV3> create(Fields& f, char const* name = "attn0", TensorRTPhase phase = TensorRTPhase::kBUILD)
{
    return std::unique_ptr<IPluginV3>(creator()->createPlugin(name, f.get(), phase));
}

FlurkaAttentionPlugin* impl(IPluginV3* p)
{
    return static_cast<FlurkaAttentionPlugin*>(static_cast<IPluginV3OneCore*>(p->getCapabilityInterface(PluginCapabilityType::kCORE)));
}
IPluginV3OneBuild* build(IPluginV3* p)
{
    return static_cast<IPluginV3OneBuild*>(p->getCapabilityInterface(PluginCapabilityType::kBUILD));
}
IPluginV3OneRuntime* runtime(IPluginV3* p)
{
    return static_cast<IPluginV3OneRuntime*>(p->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
}

Dims dims3(int64_t a, int64_t b, int64_t c)
{
    Dims d{};
    d.nbDims = 3;
    d.d[0] = a;
    d.d[1] = b;
    d.d[2] = c;
    return d;
}

bool errorLogged(char const* part)
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

void testCreatorAndFields()
{
    IPluginCreatorV3One* c = creator();
    CHECK(c != nullptr);
    CHECK(std::string(c->getPluginName()) == "FlurkaAttention" && std::string(c->getPluginVersion()) == "1"
        && std::string(c->getPluginNamespace()) == "com.flurka");
    PluginFieldCollection const* names = c->getFieldNames();
    CHECK(names->nbFields == flurka::plugin::kNB_FIELDS && names->nbFields >= 4); // later fields may follow
    char const* expected[] = {"num_heads", "feature_map", "stabilizer", "eps"};
    PluginFieldType const types[] = {PluginFieldType::kINT32, PluginFieldType::kCHAR, PluginFieldType::kFLOAT32,
        PluginFieldType::kFLOAT32};
    for (int i = 0; i < 4 && i < names->nbFields; ++i)
    {
        CHECK(std::string(names->fields[i].name) == expected[i] && names->fields[i].type == types[i]);
    }
    // kCHAR with and without the NUL counted; without any NUL in the data at all.
    for (int32_t length : {-1, 4})
    {
        Fields f;
        f.fmap = "favor";
        f.fmapLength = length < 0 ? -1 : 5;
        auto p = create(f);
        CHECK(p != nullptr && impl(p.get())->attrs().featureMap == "favor");
    }
    {
        char const raw[] = {'e', 'l', 'u', 'X', 'Y'}; // no NUL: length 3 bounds the read
        int32_t heads = 4;
        PluginField fs[] = {PluginField("num_heads", &heads, PluginFieldType::kINT32, 1),
            PluginField("feature_map", raw, PluginFieldType::kCHAR, 3)};
        PluginFieldCollection fc{2, fs};
        std::unique_ptr<IPluginV3> p(c->createPlugin("n", &fc, TensorRTPhase::kBUILD));
        CHECK(p != nullptr && impl(p.get())->attrs().featureMap == "elu" && impl(p.get())->attrs().numHeads == 4);
        CHECK(p != nullptr && impl(p.get())->attrs().stabilizer == 1e-3F && impl(p.get())->attrs().eps == 1e-6F);
    }
    CHECK(gLogger.messages.empty()); // plugin_namespace / plugin_version are known parser fields
    // Bad fields: nullptr, and one error naming the node, the field and the value.
    Fields bad;
    bad.fmap = "bogus";
    CHECK(create(bad, "nodeX") == nullptr);
    CHECK(errorLogged("node 'nodeX': field feature_map='bogus' is not a known feature map (allowed: relu, elu, rfa, favor"));
    Fields zero;
    zero.heads = 0;
    CHECK(create(zero) == nullptr && errorLogged("field num_heads=0 is invalid"));
    Fields nan;
    nan.eps = std::nanf("");
    CHECK(create(nan) == nullptr && errorLogged("field eps=nan is invalid"));
    {
        float heads = 2.0F;
        PluginField fs[] = {PluginField("num_heads", &heads, PluginFieldType::kFLOAT32, 1),
            PluginField("feature_map", "relu", PluginFieldType::kCHAR, 5)};
        PluginFieldCollection fc{2, fs};
        CHECK(c->createPlugin("n", &fc, TensorRTPhase::kBUILD) == nullptr);
        CHECK(errorLogged("field num_heads has type kFLOAT32; expected kINT32"));
        PluginFieldCollection only{1, fs + 1};
        CHECK(c->createPlugin("n", &only, TensorRTPhase::kBUILD) == nullptr);
        CHECK(errorLogged("required field num_heads is missing"));
        CHECK(c->createPlugin("n", nullptr, TensorRTPhase::kBUILD) == nullptr && errorLogged("is missing"));
    }
    {
        Fields f;
        f.get();
        int32_t extra = 1;
        f.list.emplace_back("mystery", &extra, PluginFieldType::kINT32, 1);
        f.fc.nbFields = static_cast<int32_t>(f.list.size());
        f.fc.fields = f.list.data();
        std::unique_ptr<IPluginV3> p(c->createPlugin("n", &f.fc, TensorRTPhase::kBUILD));
        CHECK(p != nullptr && gLogger.saw(ILogger::Severity::kWARNING, "ignoring unknown field 'mystery'"));
        gLogger.messages.clear();
    }
}

void testSerializationAndClones()
{
    Fields f;
    f.fmap = "rfa";
    f.heads = 3;
    auto p = create(f);
    CHECK(p != nullptr);
    if (!p)
        return;
    for (auto type : {PluginCapabilityType::kCORE, PluginCapabilityType::kBUILD, PluginCapabilityType::kRUNTIME})
    {
        CHECK(p->getCapabilityInterface(type) != nullptr);
    }
    PluginFieldCollection const* serial = runtime(p.get())->getFieldsToSerialize();
    CHECK(serial != nullptr && serial->nbFields == flurka::plugin::kNB_FIELDS);
    std::unique_ptr<IPluginV3> back(creator()->createPlugin("attn0", serial, TensorRTPhase::kRUNTIME));
    CHECK(back != nullptr);
    if (back)
    {
        auto const& a = impl(p.get())->attrs();
        auto const& b = impl(back.get())->attrs();
        CHECK(a.numHeads == b.numHeads && a.featureMap == b.featureMap && a.featureMapId == b.featureMapId
            && a.stabilizer == b.stabilizer && a.eps == b.eps);
        CHECK(std::string(build(p.get())->getTimingCacheID()) == build(back.get())->getTimingCacheID());
    }
    CHECK(std::string(build(p.get())->getMetadataString()).find("num_heads=3 feature_map=rfa") != std::string::npos);
    Fields other;
    other.eps = 0.125F;
    auto q = create(other);
    CHECK(q && std::string(build(q.get())->getTimingCacheID()) != build(p.get())->getTimingCacheID());
    // Clones and attached copies are independent objects with equal attributes.
    std::unique_ptr<IPluginV3> clone(p->clone());
    std::unique_ptr<IPluginV3> attached(runtime(p.get())->attachToContext(nullptr));
    CHECK(clone && attached && clone.get() != p.get() && attached.get() != p.get());
    if (clone && attached)
    {
        CHECK(impl(clone.get())->attrs().featureMap == "rfa" && impl(attached.get())->attrs().numHeads == 3);
        PluginFieldCollection const* s1 = runtime(clone.get())->getFieldsToSerialize();
        p.reset(); // the clone's serialized fields must not point into the original
        CHECK(s1->nbFields == flurka::plugin::kNB_FIELDS && *static_cast<int32_t const*>(s1->fields[0].data) == 3
            && std::string(static_cast<char const*>(s1->fields[1].data)) == "rfa");
    }
}

void testOutputShapes()
{
    Fields f;
    f.fmap = "favor";
    f.heads = 2;
    auto p = create(f);
    flurka_test::ExprBuilder eb;
    Dim b(-1), nq(-1), nk(7), hd(128), hdv(64), h(2), pp(16), d(64), bad(99), one(1);
    auto exprs = [](Dim const& x, Dim const& y, Dim const& z) {
        DimsExprs e{};
        e.nbDims = 3;
        e.d[0] = &x;
        e.d[1] = &y;
        e.d[2] = &z;
        return e;
    };
    DimsExprs in[4] = {exprs(b, nq, hd), exprs(b, nk, hd), exprs(b, nk, hdv), exprs(h, pp, d)};
    DimsExprs out[1];
    CHECK(build(p.get())->getOutputShapes(in, 4, nullptr, 0, out, 1, eb) == 0);
    CHECK(out[0].nbDims == 3 && out[0].d[0] == &b && out[0].d[1] == &nq && out[0].d[2] == &hdv);
    CHECK(gLogger.messages.empty());
    struct Case
    {
        DimsExprs in[4];
        int32_t nb;
        char const* error;
    };
    Case const cases[] = {
        {{exprs(b, nq, hd), exprs(b, nk, hd), exprs(b, nk, hdv)}, 3, "needs input 3 (feature_proj [H, P, d])"},
        {{exprs(b, nq, bad), exprs(b, nk, hd), exprs(b, nk, hdv), exprs(h, pp, d)}, 4,
            "query hidden size 99 (shape [?, ?, 99]) is not divisible by num_heads=2"},
        {{exprs(b, nq, hd), exprs(b, nk, hdv), exprs(b, nk, hdv), exprs(h, pp, d)}, 4,
            "key hidden size 64 differs from query hidden size 128"},
        {{exprs(b, nq, hd), exprs(b, nk, hd), exprs(b, one, hdv), exprs(h, pp, d)}, 4,
            "key length 7 differs from value length 1"},
        {{exprs(one, nq, hd), exprs(h, nk, hd), exprs(b, nk, hdv), exprs(h, pp, d)}, 4,
            "key batch 2 differs from query batch 1"},
        {{exprs(b, nq, hd), exprs(b, nk, hd), exprs(b, nk, hdv), exprs(one, pp, d)}, 4,
            "feature_proj shape [1, 16, 64] does not start with num_heads=2"},
        {{exprs(b, nq, hd), exprs(b, nk, hd), exprs(b, nk, hdv), exprs(h, pp, h)}, 4,
            "feature_proj shape [2, 16, 2] does not end with head_dim=64"},
    };
    for (Case const& c : cases)
    {
        CHECK(build(p.get())->getOutputShapes(c.in, c.nb, nullptr, 0, out, 1, eb) == -1);
        CHECK(errorLogged(c.error));
    }
    DimsExprs rank2 = exprs(b, nq, hd);
    rank2.nbDims = 2;
    DimsExprs r2[4] = {rank2, in[1], in[2], in[3]};
    CHECK(build(p.get())->getOutputShapes(r2, 4, nullptr, 0, out, 1, eb) == -1 && errorLogged("expected rank 3"));
    CHECK(build(p.get())->getOutputShapes(in, 2, nullptr, 0, out, 1, eb) == -1 && errorLogged("the node has 2 inputs"));
    CHECK(build(p.get())->getOutputShapes(in, 4, nullptr, 0, out, 2, eb) == -1 && errorLogged("expected 1 output, got 2"));
    DataType types[4] = {DataType::kHALF, DataType::kHALF, DataType::kHALF, DataType::kHALF};
    DataType outType = DataType::kFLOAT;
    CHECK(build(p.get())->getOutputDataTypes(&outType, 1, types, 4) == 0 && outType == DataType::kHALF);
    types[0] = DataType::kINT32;
    CHECK(build(p.get())->getOutputDataTypes(&outType, 1, types, 4) == -1 && errorLogged("query has type an unsupported type"));
}

DynamicPluginTensorDesc desc(Dims d, DataType t = DataType::kHALF, TensorFormat fmt = TensorFormat::kLINEAR)
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

void testFormats()
{
    DataType const all[] = {DataType::kFLOAT, DataType::kHALF, DataType::kINT8, DataType::kINT32, DataType::kBOOL,
        DataType::kUINT8, DataType::kFP8, DataType::kBF16, DataType::kINT64, DataType::kINT4};
    auto supported = [](DataType t) { return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16; };
    for (char const* fmap : {"relu", "favor"})
    {
        Fields f;
        f.fmap = fmap;
        auto p = create(f);
        int32_t const nbIn = std::string(fmap) == "favor" ? 4 : 3;
        for (DataType first : all)
        {
            for (DataType t : all)
            {
                for (TensorFormat fmt : {TensorFormat::kLINEAR, TensorFormat::kCHW32, TensorFormat::kHWC8})
                {
                    for (int32_t pos = 0; pos <= nbIn; ++pos)
                    {
                        DynamicPluginTensorDesc io[5];
                        for (auto& x : io)
                            x = desc(dims3(1, 8, 128), first);
                        io[pos] = desc(dims3(1, 8, 128), pos == 0 ? first : t, fmt);
                        DataType const mine = pos == 0 ? first : t;
                        bool const want = fmt == TensorFormat::kLINEAR && supported(mine) && (pos == 0 || t == first);
                        CHECK(build(p.get())->supportsFormatCombination(pos, io, nbIn, 1) == want);
                    }
                }
            }
        }
        DynamicPluginTensorDesc io[5];
        CHECK(!build(p.get())->supportsFormatCombination(nbIn + 1, io, nbIn, 1));
        CHECK(!build(p.get())->supportsFormatCombination(-1, io, nbIn, 1));
    }
}

void testConfigureAndEnqueue()
{
    fake_cuda_reset();
    fake_cuda_state()->cc = 90;
    fake_cuda_state()->contextId = 7000;
    Fields f;
    f.fmap = "favor";
    f.heads = 2;
    auto p = create(f);
    DynamicPluginTensorDesc in[4] = {desc(dims3(-1, -1, 128)), desc(dims3(-1, 16, 128)), desc(dims3(-1, 16, 64)),
        desc(dims3(2, 8, 64))};
    in[0].max = dims3(4, 512, 128);
    in[1].max = dims3(4, 16, 128);
    in[2].max = dims3(4, 16, 64);
    DynamicPluginTensorDesc out[1] = {desc(dims3(-1, -1, 64))};
    CHECK(build(p.get())->configurePlugin(in, 4, out, 1) == 0);
    CHECK(gLogger.messages.empty());
    flurka_attention_params_t mp{4, 2, 512, 16, 64, 32, 8, FLURKA_DTYPE_FP16, FLURKA_FMAP_FAVOR, 0.25F, 0.5F};
    size_t const ws = build(p.get())->getWorkspaceSize(in, 4, out, 1);
    CHECK(ws == flurka_attention_workspace_size(&mp) && ws > 0);
    // Unsupported configuration (d = 48 has no kernel), empty keys, an old GPU: one clear error each.
    {
        DynamicPluginTensorDesc b[4] = {desc(dims3(1, 8, 96)), desc(dims3(1, 4, 96)), desc(dims3(1, 4, 64)),
            desc(dims3(2, 8, 48))};
        CHECK(build(p.get())->configurePlugin(b, 4, out, 1) == -1 && errorLogged("do not support this configuration"));
        DynamicPluginTensorDesc e[4] = {in[0], desc(dims3(4, 0, 128)), desc(dims3(4, 0, 64)), in[3]};
        CHECK(build(p.get())->configurePlugin(e, 4, out, 1) == -1 && errorLogged("length Nk=0"));
    }
    fake_cuda_state()->cc = 75;
    CHECK(build(p.get())->configurePlugin(in, 4, out, 1) == -1);
    CHECK(errorLogged("this GPU has compute capability 7.5, which the compiled kernels do not support"));
    auto old = create(f); // a fresh object: reports the device once itself
    CHECK(!build(old.get())->supportsFormatCombination(0, in, 4, 1));
    CHECK(errorLogged("compute capability 7.5"));
    CHECK(!build(old.get())->supportsFormatCombination(0, in, 4, 1));
    CHECK(gLogger.messages.empty()); // reported once per plugin object
    fake_cuda_state()->cc = 90;

    // Runtime: a fresh plugin from the serialized fields; enqueue before onShapeChange fails cleanly.
    std::unique_ptr<IPluginV3> rt(creator()->createPlugin("attn0", runtime(p.get())->getFieldsToSerialize(),
        TensorRTPhase::kRUNTIME));
    PluginTensorDesc pin[4] = {in[0].desc, in[1].desc, in[2].desc, in[3].desc};
    pin[0].dims = dims3(3, 100, 128);
    pin[1].dims = dims3(3, 16, 128);
    pin[2].dims = dims3(3, 16, 64);
    PluginTensorDesc pout[1] = {out[0].desc};
    pout[0].dims = dims3(3, 100, 64);
    alignas(16) static unsigned char buffers[6][64];
    void const* inputs[4] = {buffers[0], buffers[1], buffers[2], buffers[3]};
    void* outputs[1] = {buffers[4]};
    auto stream = reinterpret_cast<cudaStream_t>(0x99);
    CHECK(runtime(rt.get())->enqueue(pin, pout, inputs, outputs, buffers[5], stream) == -1);
    CHECK(errorLogged("enqueue called before the plugin was configured"));
    // onShapeChange loads the modules (favor: key max, kv state, query out) in the current context.
    CHECK(runtime(rt.get())->onShapeChange(pin, 4, pout, 1) == 0);
    CHECK(fake_cuda_state()->loadedImages.size() == 3 && fake_cuda_state()->launches.empty());
    CHECK(runtime(rt.get())->enqueue(pin, pout, inputs, outputs, buffers[5], stream) == 0);
    CHECK(fake_cuda_state()->loadedImages.size() == 3); // nothing loaded at enqueue
    auto const& launches = fake_cuda_state()->launches;
    CHECK(launches.size() == 3);
    if (launches.size() == 3)
    {
        auto const& qo = launches[2];
        CHECK(qo.params[0].ptr == reinterpret_cast<uintptr_t>(buffers[0]));
        CHECK(qo.params[1].ptr == reinterpret_cast<uintptr_t>(buffers[3]));
        CHECK(qo.params[4].ptr == reinterpret_cast<uintptr_t>(buffers[4]));
        CHECK(qo.params[2].ptr == reinterpret_cast<uintptr_t>(buffers[5]));
        CHECK(qo.params[5].i == 2 && qo.params[6].i == 100 && qo.params[7].i == 8);
        CHECK(qo.grid[1] == 6 && qo.stream == reinterpret_cast<CUstream>(stream));
        CHECK(launches[1].params[1].ptr == reinterpret_cast<uintptr_t>(buffers[2]));
    }
    // Empty batch: no launch, success.
    pin[0].dims = dims3(0, 100, 128);
    pin[1].dims = dims3(0, 16, 128);
    pin[2].dims = dims3(0, 16, 64);
    CHECK(runtime(rt.get())->onShapeChange(pin, 4, pout, 1) == 0);
    CHECK(runtime(rt.get())->enqueue(pin, pout, inputs, outputs, buffers[5], stream) == 0 && launches.size() == 3);
    // Nk = 0 at run time, and a module load failure at shape change: clear errors, no launch.
    pin[0].dims = dims3(1, 100, 128);
    pin[1].dims = dims3(1, 0, 128);
    pin[2].dims = dims3(1, 0, 64);
    CHECK(runtime(rt.get())->onShapeChange(pin, 4, pout, 1) == -1 && errorLogged("length Nk=0"));
    pin[1].dims = dims3(1, 16, 128);
    pin[2].dims = dims3(1, 16, 64);
    fake_cuda_state()->contextId = 7001;
    fake_cuda_state()->loadResult = CUDA_ERROR_OUT_OF_MEMORY;
    CHECK(runtime(rt.get())->onShapeChange(pin, 4, pout, 1) == -1);
    CHECK(errorLogged("loading the kernels failed (code 1002): fake: out of memory"));
    fake_cuda_state()->loadResult = CUDA_SUCCESS;
    fake_cuda_state()->launchResult = CUDA_ERROR_LAUNCH_FAILED;
    CHECK(runtime(rt.get())->onShapeChange(pin, 4, pout, 1) == 0);
    CHECK(runtime(rt.get())->enqueue(pin, pout, inputs, outputs, buffers[5], stream) == -1);
    CHECK(errorLogged("kernel launch failed"));
    fake_cuda_reset();
}

//! Records errors without allocating (the allocation-failure test makes every allocation throw).
class NoAllocLogger : public ILogger
{
public:
    void log(Severity severity, AsciiChar const* msg) noexcept override
    {
        if (severity == Severity::kERROR)
        {
            ++errors;
            std::snprintf(last, sizeof(last), "%s", msg);
        }
    }
    int errors{0};
    char last[512]{};
};

void testAllocationFailure()
{
    NoAllocLogger logger;
    flurka_test::TestLoggerFinder finder(&logger);
    setLoggerFinder(&finder);
    fake_cuda_reset();
    Fields f;
    f.fmap = "favor";
    PluginFieldCollection const* fc = f.get();
    auto p = create(f);
    DynamicPluginTensorDesc good[4] = {desc(dims3(2, 8, 128)), desc(dims3(2, 4, 128)), desc(dims3(2, 4, 64)),
        desc(dims3(2, 8, 64))};
    DynamicPluginTensorDesc bad[4] = {desc(dims3(2, 8, 99)), good[1], good[2], good[3]};
    DynamicPluginTensorDesc out[1] = {desc(dims3(2, 8, 64))};
    PluginTensorDesc pin[4] = {good[0].desc, good[1].desc, good[2].desc, good[3].desc};
    PluginTensorDesc emptyKeys[4] = {good[0].desc, good[1].desc, good[2].desc, good[3].desc};
    emptyKeys[1].dims = dims3(2, 0, 128);
    emptyKeys[2].dims = dims3(2, 0, 64);
    PluginTensorDesc pout[1] = {out[0].desc};
    flurka_test::ExprBuilder eb;
    Dim b(2), n(8), hd(99), k(4), hdv(64), h(2), pp(8), d(64);
    DimsExprs in[4];
    Dim const* dimsOf[4][3] = {{&b, &n, &hd}, {&b, &k, &hd}, {&b, &k, &hdv}, {&h, &pp, &d}};
    for (int i = 0; i < 4; ++i)
    {
        in[i].nbDims = 3;
        for (int j = 0; j < 3; ++j)
            in[i].d[j] = dimsOf[i][j];
    }
    DimsExprs shapes[1];
    alignas(16) static unsigned char buf[6][64];
    void const* inputs[4] = {buf[0], buf[1], buf[2], buf[3]};
    void* outputs[1] = {buf[4]};
    std::unique_ptr<IPluginV3> unconfigured(p ? p->clone() : nullptr);

    gFailAllocations = true;
    IPluginV3* created = creator()->createPlugin("oom_node", fc, TensorRTPhase::kBUILD);
    IPluginV3* cloned = p->clone();
    IPluginV3* attached = runtime(p.get())->attachToContext(nullptr);
    int32_t const shapeRc = build(p.get())->getOutputShapes(in, 4, nullptr, 0, shapes, 1, eb);
    int32_t const configureRc = build(p.get())->configurePlugin(bad, 4, out, 1);
    int32_t const twoOutputsRc = build(p.get())->configurePlugin(good, 4, out, 2);
    int32_t const twoShapesRc = build(p.get())->getOutputShapes(in, 4, nullptr, 0, shapes, 2, eb);
    int32_t const twoChangeRc = runtime(p.get())->onShapeChange(pin, 4, pout, 2);
    int32_t const shapeChangeRc = runtime(p.get())->onShapeChange(emptyKeys, 4, pout, 1);
    int32_t const enqueueRc = runtime(unconfigured.get())->enqueue(pin, pout, inputs, outputs, buf[5], nullptr);
    PluginFieldCollection const* serial = runtime(unconfigured.get())->getFieldsToSerialize();
    gFailAllocations = false;

    CHECK(gFailedAllocations > 0);
    CHECK(created == nullptr && cloned == nullptr && attached == nullptr);
    CHECK(shapeRc == -1 && configureRc == -1 && shapeChangeRc == -1 && enqueueRc == -1);
    CHECK(twoOutputsRc == -1 && twoShapesRc == -1 && twoChangeRc == -1);
    CHECK(serial == nullptr);
    CHECK(logger.errors >= 11);
    CHECK(std::string(logger.last).find("out of memory") != std::string::npos);
    delete created;
    delete cloned;
    delete attached;
    setLoggerFinder(nullptr);
}

} // namespace

int main()
{
    flurka_test::TestLoggerFinder finder(&gLogger);
    setLoggerFinder(&finder);
    testCreatorAndFields();
    testSerializationAndClones();
    testOutputShapes();
    testFormats();
    testConfigureAndEnqueue();
    testAllocationFailure();
    setLoggerFinder(nullptr);
    return flurka_test::finish("plugin_tests");
}
