"""deploy triton: config.pbtxt parsed with Triton's model_config schema, checked against the ONNX I/O;
the copied model runs in ORT with the same output; plans without TensorRT; atomic failure."""

import shutil

import numpy as np
import onnx
import pytest

from flurka_export.cli import main
from flurka_export.deploy.triton import DeployError, deploy_triton, preferred_batch_sizes
from flurka_export.export import export_onnx
from flurka_export.models import FlurkaConfig, build_model
from flurka_export.parity.inputs import make_inputs
from flurka_export.runtimes.ort_runner import make_session
from flurka_export.utils import OutputError

model_config_pb2 = pytest.importorskip(
    "tritonclient.grpc.model_config_pb2", reason="pip install 'tritonclient[grpc]' (Triton's model_config schema)")
text_format = pytest.importorskip("google.protobuf.text_format")

ONNX_TO_TRITON = {onnx.TensorProto.INT64: "TYPE_INT64", onnx.TensorProto.FLOAT: "TYPE_FP32",
                  onnx.TensorProto.FLOAT16: "TYPE_FP16", onnx.TensorProto.BFLOAT16: "TYPE_BF16"}


@pytest.fixture(scope="module")
def tiny():
    config = FlurkaConfig(attention="flurka-favor", num_layers=1, hidden_size=32, num_heads=2, low_rank=8,
                          max_seq_len=64, num_features=8, vocab_size=100)
    return config, build_model(config)


@pytest.fixture(scope="module")
def onnx_fp32(tiny, tmp_path_factory):
    return export_onnx(tiny[1], tmp_path_factory.mktemp("m") / "model.onnx")


def parse(path):
    cfg = model_config_pb2.ModelConfig()
    text_format.Parse(path.read_text(), cfg)  # raises on any field Triton does not know
    return cfg


def check_against_onnx(cfg, onnx_path, max_batch):
    model = onnx.load(str(onnx_path), load_external_data=False)
    for ours, theirs in ((cfg.input, model.graph.input), (cfg.output, model.graph.output)):
        assert [t.name for t in ours] == [t.name for t in theirs]
        for t, vi in zip(ours, theirs, strict=True):
            assert model_config_pb2.DataType.Name(t.data_type) == ONNX_TO_TRITON[vi.type.tensor_type.elem_type]
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]
            assert list(t.dims) == (dims[1:] if max_batch else dims)


def test_onnx_repo_config_and_ort_parity(tiny, onnx_fp32, tmp_path):
    repo = tmp_path / "repo"
    assert main(["deploy", "triton", str(onnx_fp32), "-o", str(repo), "--name", "flurka", "--max-batch", "8",
                 "--instances", "2", "--dynamic-batching"]) == 0
    cfg = parse(repo / "flurka" / "config.pbtxt")
    assert cfg.name == "flurka" and cfg.backend == "onnxruntime" and cfg.max_batch_size == 8
    assert list(cfg.dynamic_batching.preferred_batch_size) == [2, 4, 8]
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 100
    assert [(g.count, model_config_pb2.ModelInstanceGroup.Kind.Name(g.kind)) for g in cfg.instance_group] == [
        (2, "KIND_CPU")]
    check_against_onnx(cfg, onnx_fp32, max_batch=8)
    assert [list(t.dims) for t in cfg.input] == [[-1], [-1]]  # sequence dynamic, batch left to Triton
    readme = (repo / "flurka" / "README.md").read_text()
    assert "function bodies" in readme and "tritonserver --model-repository=" in readme
    assert "max_seq_len=64" in readme and "if ids.shape[1] > MAX_SEQ_LEN:" in readme

    feeds = make_inputs(tiny[0], (2, 24), seed=1)
    ref = make_session(onnx_fp32).run(None, feeds)[0]
    got = make_session(repo / "flurka" / "1" / "model.onnx").run(None, feeds)[0]
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_half_types_no_batching(tiny, tmp_path, dtype):
    path = export_onnx(tiny[1], tmp_path / "m.onnx", dtype=dtype)
    out = deploy_triton(path, tmp_path / "repo", "m", kind="gpu")
    cfg = parse(out / "config.pbtxt")
    assert cfg.max_batch_size == 0 and not cfg.HasField("dynamic_batching")
    assert model_config_pb2.ModelInstanceGroup.Kind.Name(cfg.instance_group[0].kind) == "KIND_GPU"
    check_against_onnx(cfg, path, max_batch=0)
    assert [list(t.dims) for t in cfg.input] == [[-1, -1], [-1, -1]]
    assert model_config_pb2.DataType.Name(cfg.output[0].data_type) == {"fp16": "TYPE_FP16", "bf16": "TYPE_BF16"}[dtype]


def test_external_data_copied(tiny, tmp_path):
    path = export_onnx(tiny[1], tmp_path / "src" / "big.onnx", external_data=True)
    assert (tmp_path / "src" / "big.onnx.data").is_file()
    out = deploy_triton(path, tmp_path / "repo", "big")
    assert (out / "1" / "big.onnx.data").is_file()
    feeds = make_inputs(tiny[0], (1, 16))
    np.testing.assert_array_equal(make_session(out / "1" / "model.onnx").run(None, feeds)[0],
                                  make_session(path).run(None, feeds)[0])


def test_plan_with_onnx_io_and_plugin(onnx_fp32, tmp_path):
    plan = tmp_path / "model.plan"
    plan.write_bytes(b"not-really-an-engine")  # with --onnx the plan is only copied, never parsed
    plugin = tmp_path / "libflurka_trt_plugin_static.so"  # Triton dlopens plugins: the self-registering library
    plugin.write_bytes(b"\x7fELF")
    out = deploy_triton(plan, tmp_path / "repo", "eng", max_batch=4, plugin=plugin, onnx_path=onnx_fp32)
    cfg = parse(out / "config.pbtxt")
    assert cfg.platform == "tensorrt_plan" and not cfg.backend
    check_against_onnx(cfg, onnx_fp32, max_batch=4)
    assert (out / "1" / "model.plan").read_bytes() == plan.read_bytes()
    assert (out / "libflurka_trt_plugin_static.so").is_file()
    readme = (out / "README.md").read_text()
    repo = (tmp_path / "repo").resolve()
    assert f"LD_PRELOAD={repo}/eng/libflurka_trt_plugin_static.so tritonserver --model-repository={repo}" in readme
    assert "TensorRT version" in readme


def test_plan_without_tensorrt_or_onnx_is_one_clear_error(tmp_path, capsys):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed: the engine itself gives the I/O")
    except ImportError:
        pass
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"x")
    assert main(["deploy", "triton", str(plan), "-o", str(tmp_path / "repo"), "--name", "m"]) == 1
    err = capsys.readouterr().err.strip()
    assert "needs TensorRT" in err and "--onnx" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize("kwargs,match", [
    (dict(dynamic_batching=True), "needs --max-batch"),
    (dict(plugin="lib.so"), "--plugin is for TensorRT plans"),
    (dict(name="a/b"), "plain directory name"),
])
def test_bad_requests_write_nothing(onnx_fp32, tmp_path, kwargs, match):
    kwargs = {"name": "m", **kwargs}
    with pytest.raises(DeployError, match=match):
        deploy_triton(onnx_fp32, tmp_path / "repo", **kwargs)
    assert not (tmp_path / "repo").exists()


def test_failed_copy_leaves_existing_repo_untouched(onnx_fp32, tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    deploy_triton(onnx_fp32, repo, "m")
    before = sorted(p.relative_to(repo) for p in repo.rglob("*"))

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(shutil, "copyfile", boom)
    with pytest.raises(OutputError, match="cannot write .*repo/m: disk full"):
        deploy_triton(onnx_fp32, repo, "m", max_batch=2, overwrite=True)
    with pytest.raises(OutputError):
        deploy_triton(onnx_fp32, repo, "other")
    assert sorted(p.relative_to(repo) for p in repo.rglob("*")) == before
    assert parse(repo / "m" / "config.pbtxt").max_batch_size == 0


def test_preferred_batch_sizes():
    assert preferred_batch_sizes(1) == [1]
    assert preferred_batch_sizes(6) == [2, 4, 6]
    assert preferred_batch_sizes(64) == [16, 32, 64]


def test_new_version_keeps_other_versions_models_and_files(onnx_fp32, tmp_path, capsys):
    repo = tmp_path / "models"
    (repo / "flurka" / "2").mkdir(parents=True)
    (repo / "flurka" / "2" / "model.onnx").write_bytes(b"older model")
    (repo / "other" / "1").mkdir(parents=True)
    (repo / "README.md").write_text("the user's own notes")
    argv = ["deploy", "triton", str(onnx_fp32), "-o", str(repo), "--name", "flurka"]
    assert main(argv) == 0
    assert (repo / "flurka" / "3" / "model.onnx").is_file()  # next free version
    assert (repo / "flurka" / "2" / "model.onnx").read_bytes() == b"older model"
    assert (repo / "other" / "1").is_dir() and (repo / "README.md").read_text() == "the user's own notes"
    assert main(argv) == 0 and (repo / "flurka" / "4").is_dir()  # same config: another version is fine


def test_existing_version_or_changed_config_needs_overwrite(onnx_fp32, tmp_path, capsys):
    repo = tmp_path / "models"
    argv = ["deploy", "triton", str(onnx_fp32), "-o", str(repo), "--name", "m"]
    assert main(argv) == 0
    (repo / "m" / "1" / "notes.txt").write_text("keep me")
    capsys.readouterr()
    assert main([*argv, "--version", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists" in err[0] and "--overwrite" in err[0]
    assert main([*argv, "--max-batch", "4"]) == 1
    assert "config.pbtxt exists and differs" in capsys.readouterr().err
    assert sorted(p.name for p in (repo / "m").iterdir()) == ["1", "README.md", "config.pbtxt"]
    assert main([*argv, "--version", "1", "--max-batch", "4", "--overwrite"]) == 0
    assert parse(repo / "m" / "config.pbtxt").max_batch_size == 4
    assert (repo / "m" / "1" / "notes.txt").read_text() == "keep me"  # --overwrite replaces only our files


def test_model_without_bodies_is_refused_for_onnxruntime(onnx_fp32, tmp_path, capsys):
    stripped = tmp_path / "m.strip.onnx"
    assert main(["prepare-trt", str(onnx_fp32), "-o", str(stripped), "--strip-bodies"]) == 0
    capsys.readouterr()
    assert main(["deploy", "triton", str(stripped), "-o", str(tmp_path / "repo"), "--name", "m"]) == 1
    err = capsys.readouterr().err.strip()
    assert "have no function body" in err and "tensorrt_plan" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "repo").exists()
