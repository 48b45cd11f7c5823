"""`new --task lm`, `export`, `generate` from the command line; bad input is one line and exit 1."""

import pytest

from flurka_export.cli.main import main


@pytest.fixture(scope="module")
def lm_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("gen")
    assert main(["new", "--task", "lm", "--num-layers", "1", "--max-seq-len", "32", "-o", str(d / "ck")]) == 0
    assert main(["export", str(d / "ck"), "-o", str(d / "lm.onnx")]) == 0
    return d


def test_generate_streams_the_same_tokens_in_both_runtimes(lm_files, capsys):
    capsys.readouterr()
    assert main(["generate", str(lm_files / "ck"), "--prompt-ids", "1,2,3", "--max-new-tokens", "6"]) == 0
    torch_out = capsys.readouterr()
    assert main(["generate", str(lm_files / "lm.onnx"), "--prompt-ids", "1,2,3", "--max-new-tokens", "6"]) == 0
    ort_out = capsys.readouterr()
    assert torch_out.out == ort_out.out and len(torch_out.out.split()) == 6
    assert "generated 6 tokens for 1 prompt(s) in torch" in torch_out.err
    assert "generated 6 tokens for 1 prompt(s) in ort" in ort_out.err and "ms per token" in ort_out.err


@pytest.mark.parametrize("args,msg", [
    (["--prompt-ids", "1,2,99999"], "token id 99999 outside the vocabulary"),
    (["--prompt-ids", "1", "--top-p", "0"], "argument --top-p: must be a number > 0"),
    (["--prompt-ids", "1", "--top-p", "1.5"], "top_p=1.5 is not allowed"),
    (["--prompt-ids", "1", "--max-new-tokens", "0"], "argument --max-new-tokens"),
    (["--prompt-ids", "1", "--max-new-tokens", "40"], "max_seq_len=32"),
    (["--prompt", "hello"], "needs a tokenizer.json"),
    ([], "no prompt"),
    (["--prompt-ids", "1", "--greedy", "--temperature", "0.5"], "--greedy takes no"),
    (["--prompt-ids", "1,x"], "expected comma-separated integers"),
])
def test_bad_input_is_one_line(lm_files, capsys, args, msg):
    try:
        code = main(["generate", str(lm_files / "lm.onnx"), *args])
    except SystemExit as e:  # argparse's usage errors exit 1 from inside the parser
        code = e.code
    assert code == 1
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1


def test_an_encoder_does_not_generate(tmp_path, capsys):
    assert main(["new", "--task", "classify", "-o", str(tmp_path / "cls")]) == 0
    assert main(["generate", str(tmp_path / "cls"), "--prompt-ids", "1"]) == 1
    assert "does not generate" in capsys.readouterr().err


def test_new_refuses_a_kind_that_cannot_be_causal(tmp_path, capsys):
    assert main(["new", "--task", "lm", "--attention", "flurka-elu", "-o", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert "cannot be causal" in err and "kernel-elu" in err and not (tmp_path / "x").exists()


@pytest.mark.parametrize("cmd,msg", [
    (["build-engine", "{onnx}", "-o", "{d}/lm.plan"], "TensorRT cannot build the lm family"),
    (["deploy", "triton", "{onnx}", "-o", "{d}/repo", "--name", "lm"], "use --backend python"),
    (["deploy", "triton", "{onnx}", "-o", "{d}/repo", "--name", "lm", "--backend", "onnxruntime"],
     "use --backend python"),
])
def test_commands_without_an_lm_path_say_so_in_one_line(lm_files, tmp_path, capsys, cmd, msg):
    args = [a.format(onnx=lm_files / "lm.onnx", d=tmp_path) for a in cmd]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_inspect_shows_the_constant_state(lm_files, capsys):
    assert main(["inspect", str(lm_files / "lm.onnx")]) == 0
    out = capsys.readouterr().out
    assert "state between calls: 1 past_key_values.* inputs" in out and "whatever the context length" in out
    assert "com.microsoft::LinearAttention x1" in out


def test_beam_search_from_the_command_line(lm_files, capsys):
    capsys.readouterr()
    for model in (lm_files / "ck", lm_files / "lm.onnx"):
        assert main(["generate", str(model), "--prompt-ids", "1,2,3", "--prompt-ids", "4,5", "--num-beams", "3",
                     "--max-new-tokens", "5", "--length-penalty", "-0.5", "--early-stopping", "never"]) == 0
    torch_out, ort_out = capsys.readouterr().out.split("[0]")[1:]
    assert "[0]" + torch_out == "[0]" + ort_out and ort_out.count("\n") == 2


@pytest.mark.parametrize("args,msg", [
    (["--num-beams", "0"], "argument --num-beams"),
    (["--num-beams", "2", "--top-k", "3"], "takes no --temperature, --top-k or --top-p"),
    (["--length-penalty", "2"], "add --num-beams N"),
    (["--num-beams", "2", "--length-penalty", "inf"], "argument --length-penalty: must be a finite number"),
])
def test_bad_beam_flags_are_one_line(lm_files, capsys, args, msg):
    try:
        code = main(["generate", str(lm_files / "lm.onnx"), "--prompt-ids", "1", *args])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 1 and msg in err and len(err.strip().splitlines()) == 1


def test_a_missing_model_is_named(tmp_path, capsys):
    assert main(["generate", str(tmp_path / "nothere"), "--prompt-ids", "1"]) == 1
    err = capsys.readouterr().err
    assert "nothere does not exist; give a checkpoint directory" in err and len(err.strip().splitlines()) == 1
