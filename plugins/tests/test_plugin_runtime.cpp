/* The plugin at configure and run time: profiles, device checks, module loading in onShapeChange, enqueue
 * marshalling and failures, and every noexcept entry point under failing allocations. */
#include "plugin_test_util.h"

#include <cstdlib>
#include <cstring>
#include <new>

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

namespace plugin_test
{

namespace
{

//! A favor plugin for H=2, d=64, dv=32, P=8 and its profile (batch and query length dynamic).
struct FavorSetup
{
    Fields f;
    std::unique_ptr<IPluginV3> p;
    DynamicPluginTensorDesc in[4];
    DynamicPluginTensorDesc out[1];

    FavorSetup()
    {
        fake_cuda_reset();
        fake_cuda_state()->cc = 90;
        fake_cuda_state()->contextId = 7000;
        f.fmap = "favor";
        f.heads = 2;
        p = create(f);
        in[0] = desc(dims3(-1, -1, 128));
        in[1] = desc(dims3(-1, 16, 128));
        in[2] = desc(dims3(-1, 16, 64));
        in[3] = desc(dims3(2, 8, 64));
        in[0].max = dims3(4, 512, 128);
        in[1].max = dims3(4, 16, 128);
        in[2].max = dims3(4, 16, 64);
        out[0] = desc(dims3(-1, -1, 64));
    }
};

void testConfigure()
{
    FavorSetup setup;
    auto& f = setup.f;
    auto& p = setup.p;
    auto& in = setup.in;
    auto& out = setup.out;
    CHECK(build(p.get())->configurePlugin(in, 4, out, 1) == 0);
    CHECK(gLogger.messages.empty());
    flurka_attention_params_t mp{4, 2, 512, 16, 64, 32, 8, FLURKA_DTYPE_FP16, FLURKA_FMAP_FAVOR, 0.25F, 0.5F, 1};
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
}

void testEnqueue()
{
    FavorSetup setup;
    auto& p = setup.p;
    auto& in = setup.in;
    auto& out = setup.out;
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

} // namespace

void testConfigureAndEnqueue()
{
    testConfigure();
    testEnqueue();
}

// Without a driver (FLURKA_CUDA_DRIVER_LIBRARY names no file): the build and runtime phases each log one error,
// naming the library and saying a NVIDIA driver is needed, through the plugin's logger.
void testNoDriver()
{
    Fields f; // relu, 2 heads
    auto p = create(f);
    DynamicPluginTensorDesc in[3] = {desc(dims3(1, 8, 128)), desc(dims3(1, 4, 128)), desc(dims3(1, 4, 128))};
    DynamicPluginTensorDesc out[1] = {desc(dims3(1, 8, 128))};
    CHECK(build(p.get())->configurePlugin(in, 3, out, 1) == -1);
    CHECK(errorLogged("node 'attn0': cannot load the CUDA driver library"));
    CHECK(!build(p.get())->supportsFormatCombination(0, in, 3, 1) && gLogger.messages.empty()); // reported once
    std::unique_ptr<IPluginV3> rt(creator()->createPlugin("attn1", runtime(p.get())->getFieldsToSerialize(),
        TensorRTPhase::kRUNTIME));
    PluginTensorDesc pin[3] = {in[0].desc, in[1].desc, in[2].desc};
    PluginTensorDesc pout[1] = {out[0].desc};
    CHECK(runtime(rt.get())->onShapeChange(pin, 3, pout, 1) == -1 && gLogger.messages.size() == 1);
    CHECK(errorLogged("node 'attn1': cannot load the CUDA driver library"));
    CHECK(std::strstr(flurka_attention_driver_error(), "needs a NVIDIA driver") != nullptr);
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

} // namespace plugin_test
