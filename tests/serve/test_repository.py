"""The Python-backend repository: config.pbtxt parsed with Triton's schema, what is batched across lengths,
and the safety rules for existing repositories (new versions only, nothing deleted, nothing half-written)."""

import json
import shutil

import onnx
import pytest

from flurka_export.cli import main
from flurka_export.deploy.triton import DeployError
from flurka_export.serve.repository import model_facts, write_python_repository
from flurka_export.utils import OutputError

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
from google.protobuf import text_format  # noqa: E402


def parse(path):
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def test_deploy_backend_python_writes_what_triton_reads(flurka_mlm, tmp_path):
    repo = tmp_path / "repo"
    assert main(["deploy", "triton", str(flurka_mlm), "-o", str(repo), "--name", "fl", "--backend", "python",
                 "--max-batch", "4", "--instances", "2", "--threads", "1"]) == 0
    cfg = parse(repo / "fl" / "config.pbtxt")
    assert cfg.backend == "python" and cfg.max_batch_size == 4 and cfg.instance_group[0].count == 2
    assert [(t.name, list(t.dims), t.allow_ragged_batch) for t in cfg.input] == [
        ("input_ids", [-1], True), ("attention_mask", [-1], True)]
    assert [(t.name, list(t.dims)) for t in cfg.output] == [("logits", [-1, 128])]
    params = {k: v.string_value for k, v in cfg.parameters.items()}
    assert params == {"onnx_file": "model.onnx", "intra_op_threads": "1", "allow_spinning": "0", "max_seq_len": "64",
                      "vocab_size": "128",
                      "pad_across_lengths": "true", "attention": "flurka-elu",
                      # the text family's serving I/O (models/specs/text.py)
                      "sequence_inputs": "input_ids,attention_mask", "per_token_outputs": "logits",
                      "token_input": "input_ids", "mask_input": "attention_mask"}
    version = repo / "fl" / "1"
    assert (version / "model.onnx").read_bytes() == flurka_mlm.read_bytes() and not (version / "model.onnx").is_symlink()
    assert "class TritonPythonModel" in (version / "model.py").read_text()


def test_kernel_kinds_are_not_ragged(kernel_mlm, tmp_path):
    write_python_repository(kernel_mlm, tmp_path, "k")
    cfg = parse(tmp_path / "k" / "config.pbtxt")
    assert not any(t.allow_ragged_batch for t in cfg.input)
    assert cfg.parameters["pad_across_lengths"].string_value == "false"


def test_facts_without_flurka_metadata_or_with_unmasked_keys(flurka_mlm, tmp_path):
    model = onnx.load(str(flurka_mlm))
    props = {p.key: p.value for p in model.metadata_props}
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "plain.onnx"))
    assert model_facts(tmp_path / "plain.onnx") == model_facts(tmp_path / "plain.onnx").__class__(
        None, None, None, None, False)
    config = json.loads(props["flurka.config"])
    config["mask_keys_in_attention"] = False  # the authors' attention ignores the padding mask
    onnx.helper.set_model_props(model, {**props, "flurka.config": json.dumps(config)})
    onnx.save(model, str(tmp_path / "unmasked.onnx"))
    assert not model_facts(tmp_path / "unmasked.onnx").pad_across_lengths


def test_image_models_batch_without_sequence_checks(image_model):
    facts = model_facts(image_model)
    assert facts.task == "image" and facts.max_seq_len is None and facts.vocab_size is None


def test_versions_are_added_never_replaced_without_overwrite(flurka_mlm, kernel_mlm, tmp_path):
    repo = tmp_path / "repo"
    (repo / "other").mkdir(parents=True)  # someone else's model: never touched
    (repo / "other" / "keep.txt").write_text("x")
    assert write_python_repository(flurka_mlm, repo, "fl") == repo / "fl" / "1"
    assert write_python_repository(flurka_mlm, repo, "fl") == repo / "fl" / "2"
    with pytest.raises(DeployError, match="fl/1 already exists; pick another --version"):
        write_python_repository(flurka_mlm, repo, "fl", version=1)
    with pytest.raises(DeployError, match="config.pbtxt exists and differs"):
        write_python_repository(kernel_mlm, repo, "fl")
    (repo / "fl" / "1" / "notes.txt").write_text("mine")
    (repo / "fl" / "1" / "model.onnx").write_text("stale")
    write_python_repository(flurka_mlm, repo, "fl", version=1, overwrite=True)
    # --overwrite replaces the files this writes, and only those: the user's notes stay
    assert (repo / "fl" / "1" / "notes.txt").read_text() == "mine" and (repo / "fl" / "2").is_dir()
    assert (repo / "fl" / "1" / "model.onnx").read_bytes() == flurka_mlm.read_bytes()
    assert (repo / "other" / "keep.txt").read_text() == "x"
    assert sorted(p.name for p in (repo / "fl").iterdir()) == ["1", "2", "config.pbtxt"]  # no temporary left


def test_failed_write_leaves_nothing(flurka_mlm, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(shutil, "copyfile", fail)
    with pytest.raises(OutputError, match="cannot write .*/repo/fl: disk full"):
        write_python_repository(flurka_mlm, tmp_path / "repo", "fl")
    assert not (tmp_path / "repo").exists()  # not even the repository directory it created
    (tmp_path / "repo" / "fl").mkdir(parents=True)
    with pytest.raises(OutputError, match="disk full"):
        write_python_repository(flurka_mlm, tmp_path / "repo", "fl")
    assert list((tmp_path / "repo" / "fl").iterdir()) == []


def test_bad_arguments_are_one_line_errors(flurka_mlm, tmp_path, capsys):
    assert main(["deploy", "triton", str(flurka_mlm), "-o", str(tmp_path), "--name", "fl", "--backend", "python",
                 "--kind", "gpu"]) == 1
    assert "--backend python serves ONNX models on CPU instances" in capsys.readouterr().err
    assert main(["deploy", "triton", str(flurka_mlm), "-o", str(tmp_path), "--name", "fl",
                 "--backend", "tensorrt_plan"]) == 1
    assert "tensorrt_plan takes .plan/.engine files" in capsys.readouterr().err
    with pytest.raises(DeployError, match="not an ONNX file"):
        write_python_repository(tmp_path / "missing.onnx", tmp_path, "fl")
    assert not (tmp_path / "fl").exists()
