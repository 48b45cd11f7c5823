/* The plugin and its creator against a test logger, fake dimension expressions and the fake CUDA driver (with the
 * real generated launcher and a table of fake images): fields, serialization round trip, clones, shapes, formats.
 * test_plugin_runtime.cpp: configure, device checks, module loading at shape change, enqueue, allocation failure. */
#include "plugin_test_util.h"

#include <cmath>
#include <cstring>

namespace plugin_test
{

TestLogger gLogger;

namespace
{

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

} // namespace
} // namespace plugin_test

int main(int argc, char** argv)
{
    using namespace plugin_test;
    flurka_test::TestLoggerFinder finder(&gLogger);
    setLoggerFinder(&finder);
    if (argc > 1 && std::string(argv[1]) == "--no-driver")
    {
        testNoDriver();
        setLoggerFinder(nullptr);
        return flurka_test::finish("plugin_no_driver_tests");
    }
    testCreatorAndFields();
    testSerializationAndClones();
    testOutputShapes();
    testFormats();
    testConfigureAndEnqueue();
    testAllocationFailure();
    setLoggerFinder(nullptr);
    return flurka_test::finish("plugin_tests");
}
