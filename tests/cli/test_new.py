import subprocess
import sys

from flurka_export.cli import main
from flurka_export.models import load_pretrained


def test_new_writes_checkpoint(tmp_path, capsys):
    assert main(["new", "--task", "classify", "--attention", "flurka-elu", "--num-layers", "1", "-o",
                 str(tmp_path / "ck")]) == 0
    model = load_pretrained(tmp_path / "ck")
    assert model.config.num_layers == 1 and model.config.attention == "flurka-elu"


def test_new_bad_config_leaves_nothing(tmp_path, capsys):
    assert main(["new", "--hidden-size", "65", "-o", str(tmp_path / "ck")]) == 1
    assert "not divisible by num_heads" in capsys.readouterr().err
    assert not (tmp_path / "ck").exists()


def test_console_script_help_and_version():
    out = subprocess.run([sys.executable, "-m", "flurka_export", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("flurka-export ")
